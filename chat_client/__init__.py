"""The reference client of the chat protocol, and `chat-client` on top of it.

It needs nothing of the server but the seq rules it shares with it
(chat/roomstate.py): install it with `pip install chatsite[client]`.
"""
