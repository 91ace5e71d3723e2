"""Broken on purpose: gevent_io started the obvious way, importing its server (and so
gevent) before anything checks that gevent is there. Without gevent the user gets an
ImportError's traceback instead of one line naming the install command."""

import gevent_io.server as model  # DEFECT: imports gevent before MODEL.require()
from common import parse_config
from gevent_io import MODEL
from tests.broken.harness import declaration

CAUGHT_BY = ("tests/test_gevent_io.py",)

model.EchoServer(
    parse_config(declaration("tests.broken.imports_gevent_first", like=MODEL), "gevent_io, gevent first")
).serve()
