from select_mux.server import main

raise SystemExit(main())
