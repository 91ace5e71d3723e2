from prefork.server import main

raise SystemExit(main())
