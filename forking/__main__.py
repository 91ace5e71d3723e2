from forking.server import main

raise SystemExit(main())
