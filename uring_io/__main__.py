from uring_io.server import main

raise SystemExit(main())
