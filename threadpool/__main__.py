from threadpool.server import main

raise SystemExit(main())
