"""The customer web chat: a page served by the gateway and its WebSocket, both ways through Kafka.

In: the browser sends {"type": "message", "message_id", "text"} on the socket; the gateway adds the visitor and
time and publishes it to `channel.webchat.inbound.raw` like any webhook (acks=all, then an "ack" frame).
Out: the gateway follows `channel.webchat.outbound` from its end and pushes each reply to the sockets of the
visitor it is addressed to.
"""
