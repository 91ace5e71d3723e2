# gevent is optional: without it, one line and exit 1 before server.py imports it.
from gevent_io import MODEL

MODEL.require()

from gevent_io.server import main  # noqa: E402

raise SystemExit(main())
