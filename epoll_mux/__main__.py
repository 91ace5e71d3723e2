from epoll_mux.server import main

raise SystemExit(main())
