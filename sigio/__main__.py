from sigio.server import main

raise SystemExit(main())
