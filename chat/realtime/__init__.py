"""Everything that lives with a socket, in one place.

A frame's way, from the wire to the database and back out to every socket:

1. daphne hands a WebSocket to `outlet_scope` (`outlet.py`: how frames are
   written to it, below Channels' `send`), then the handshake's
   authentication (`auth.py`: token, session or guest, and the Origin), then
   `ChatConsumer` (`consumer.py`), one per socket.
2. The consumer parses each frame (`chat.protocol.parse_frame`) and calls one
   domain function: a write in `chat.services` (`message_send` stores it in
   this process's group commit and acks once it is durable), a read in
   `chat.selectors`, or a join here (`rooms.py`: access, the subscription,
   the `joined` page from `framecache.py` or the database, presence).
3. After its commit, the service publishes the event on the channel layer,
   once, to the room's group (`chat.services.broadcast`); services never
   import this package.
4. Each process's `Relay` (`relay.py`) is the one subscriber of every room
   and user its sockets are in; it receives the event once, keeps its frame
   in the room's cache, and writes the frame, framed once, to each of its
   sockets in the room through their outlets, in a plain loop.
5. What the layer loses, the sweep (`sweep.py`) finds within two sweeps:
   it compares each socket's rooms with the database and fills the holes;
   it also refreshes presence and socket counts, and closes sockets whose
   credentials ended.

Beside them: `sockets.py` (this process's open sockets, as the sweep, the
drain and the relay see them), `presence.py` (who is online, typing),
`drain.py` (a graceful stop on SIGTERM), `server.py` (mends to daphne) and
`routing.py` (the WebSocket URLs).
"""
