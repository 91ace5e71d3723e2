from nonblocking.server import main

raise SystemExit(main())
