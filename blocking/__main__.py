from blocking.server import main

raise SystemExit(main())
