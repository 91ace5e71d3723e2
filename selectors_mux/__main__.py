from selectors_mux.server import main

raise SystemExit(main())
