from asyncio_io.server import main

raise SystemExit(main())
