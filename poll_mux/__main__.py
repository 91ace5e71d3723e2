from poll_mux.server import main

raise SystemExit(main())
