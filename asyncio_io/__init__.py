"""asyncio_io: asyncio's event loop and a Protocol per connection (see server.py)."""

from common.declaration import Family, Model

MODEL = Model(
    name="asyncio_io",
    order=60,
    family=Family.READINESS,
    builds_on="selectors_mux",
    changes="the loop is asyncio's, hidden; our code is the callbacks it makes on each socket",
    waits="in the event loop's selector; our code is `asyncio.Protocol` callbacks",
    costs="as `selectors_mux`, plus the loop's bookkeeping; reading pauses while the transport's "
    "write buffer is over the cap",
    picks_up="the event loop's selector reports it; the loop calls data_received(data)",
    owed="in the transport's write buffer, which the loop flushes when the socket is writable; "
    "over the cap, pause_writing() pauses reading",
)
