# A small Twisted Redis client with the part of txredisapi's API that Synapse 1.160 calls, for the test harness
# only. Why it exists: Synapse's workers talk through Redis with the txredisapi library, which Debian does not
# package (Debian's matrix-synapse leaves Redis support out) and which cannot be installed here (no PyPI). The
# cluster runs the official Synapse image, which ships the real txredisapi; the harness runs Debian's Synapse
# with this module on its PYTHONPATH and Debian's real Redis server and hiredis parser.
#
# What Synapse uses (synapse/replication/tcp/redis.py, external_cache.py, server.py), and what this provides with
# txredisapi's behaviour:
# - RedisFactory: a reconnecting client factory keeping a pool of ready connections (AUTH and SELECT done);
#   `handler`, `pool`, `continueTrying`, `maxDelay`, the constructor's keyword arguments.
# - ConnectionHandler / UnixConnectionHandler: any command method waits for a ready connection, then runs on it
#   (a command issued while Redis is down is sent once it is back, not dropped).
# - SubscriberProtocol: `subscribe()` (a Deferred fired by the server's confirmation), `messageReceived(pattern,
#   channel, message)` for each published message, `connectionMade` / `connectionLost` overridable.
# - Commands: publish, ping, get, set (EX/PX), each with the reply timeout (the connection is dropped on a
#   timeout, and reconnected), replies decoded with the charset and numbers converted like txredisapi does.
import hiredis
from twisted.internet import defer, protocol, reactor
from twisted.python import log

__all__ = [
    "ConnectionError",
    "ConnectionHandler",
    "RedisError",
    "RedisFactory",
    "RedisProtocol",
    "ResponseError",
    "SubscriberProtocol",
    "TimeoutError",
    "UnixConnectionHandler",
]


class RedisError(Exception):
    pass


class ConnectionError(RedisError):  # noqa: A001 - txredisapi's name
    pass


class ResponseError(RedisError):
    pass


class TimeoutError(ConnectionError):  # noqa: A001 - txredisapi's name
    pass


class InvalidData(RedisError):
    pass


def _encode(value, charset):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode(charset)
    if isinstance(value, float):
        return format(value, "f").encode()
    return str(value).encode()


class RedisProtocol(protocol.Protocol):
    """One connection: commands are written at once and answered in order (Redis replies in order)."""

    def __init__(self, charset="utf-8", errors="strict", replyTimeout=None, password=None, dbid=None,
                 convertNumbers=True):
        self.charset = charset
        self.errors = errors
        self.replyTimeout = replyTimeout
        self.password = password
        self.dbid = dbid
        self.convertNumbers = convertNumbers
        self.connected = 0
        self._reader = hiredis.Reader(protocolError=InvalidData, replyError=ResponseError)
        self._pending = []  # Deferreds of sent commands, oldest first
        self._waiting_for_connect = []
        self._waiting_for_disconnect = []

    # Lifecycle -------------------------------------------------------------------------------------------------

    def whenConnected(self):
        d = defer.Deferred()
        self._waiting_for_connect.append(d)
        return d

    def whenDisconnected(self):
        d = defer.Deferred()
        self._waiting_for_disconnect.append(d)
        return d

    @defer.inlineCallbacks
    def connectionMade(self):
        # Commands may be sent before the handshake is over (AUTH must be the first one).
        self.connected = 1
        for command, value in (("AUTH", self.password), ("SELECT", self.dbid)):
            if value is None:
                continue
            try:
                yield self.execute_command(command, value)
            except Exception as error:
                self.connected = 0
                self.factory.continueTrying = False
                self.transport.loseConnection()
                self.factory.connectionError("Redis error: %s failed: %s" % (command, error))
                return
        waiting, self._waiting_for_connect = self._waiting_for_connect, []
        for d in waiting:
            d.callback(self)

    def connectionLost(self, reason):
        self.connected = 0
        pending, self._pending = self._pending, []
        for d in pending:
            if not d.called:
                d.errback(ConnectionError("Lost connection"))
        waiting, self._waiting_for_disconnect = self._waiting_for_disconnect, []
        for d in waiting:
            d.callback(self)

    # Replies ---------------------------------------------------------------------------------------------------

    def tryConvertData(self, data):
        if isinstance(data, list):
            return [self.tryConvertData(item) for item in data]
        if not isinstance(data, bytes):
            return data
        if self.charset is not None:
            try:
                data = data.decode(self.charset, self.errors)
            except UnicodeDecodeError:
                return data
        if self.convertNumbers and isinstance(data, str):
            for convert in (int, float):
                try:
                    return convert(data)
                except ValueError:
                    pass
        return data

    def dataReceived(self, data):
        self._reader.feed(data)
        reply = self._reader.gets()
        while reply is not False:
            self.replyReceived(self.tryConvertData(reply))
            reply = self._reader.gets()

    def replyReceived(self, reply):
        if not self._pending:
            log.msg("Redis reply with no command waiting: %r" % (reply,))
            return
        d = self._pending.pop(0)
        if d.called:  # timed out already
            return
        if isinstance(reply, Exception):
            d.errback(reply)
        else:
            d.callback(reply)

    # Commands --------------------------------------------------------------------------------------------------

    def execute_command(self, *args, **kwargs):
        if self.connected == 0:
            raise ConnectionError("Not connected")
        parts = [_encode(arg, self.charset) for arg in args]
        command = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        d = defer.Deferred()
        self._pending.append(d)
        self.transport.write(command)
        if self.replyTimeout and kwargs.get("apply_timeout", True):
            def fire_timeout():
                if not d.called:
                    d.errback(TimeoutError("Not received Redis response in %s seconds" % self.replyTimeout))
                    self.transport.abortConnection()

            call = reactor.callLater(self.replyTimeout, fire_timeout)

            def cancel(result):
                if call.active():
                    call.cancel()
                return result

            d.addBoth(cancel)
        return d

    def ping(self):
        return self.execute_command("PING")

    def publish(self, channel, message):
        return self.execute_command("PUBLISH", channel, message)

    def get(self, key):
        return self.execute_command("GET", key)

    def set(self, key, value, expire=None, pexpire=None):
        args = []
        if expire is not None:
            args += ["EX", expire]
        if pexpire is not None:
            args += ["PX", pexpire]
        return self.execute_command("SET", key, value, *args)


class SubscriberProtocol(RedisProtocol):
    """A subscribed connection: published messages arrive in `messageReceived`, in between command replies."""

    _subscriptions_left = 0

    def messageReceived(self, pattern, channel, message):
        pass

    def replyReceived(self, reply):
        if isinstance(reply, list) and len(reply) == 3 and reply[0] == "message":
            self.messageReceived(None, reply[1], reply[2])
        elif isinstance(reply, list) and len(reply) == 4 and reply[0] == "pmessage":
            self.messageReceived(reply[1], reply[2], reply[3])
        elif isinstance(reply, list) and len(reply) == 3 and reply[0] == "subscribe":
            # One confirmation per channel; the subscribe() Deferred fires with the last one.
            self._subscriptions_left -= 1
            if self._subscriptions_left == 0:
                RedisProtocol.replyReceived(self, reply)
        else:
            RedisProtocol.replyReceived(self, reply)

    def subscribe(self, channels):
        if isinstance(channels, str):
            channels = [channels]
        self._subscriptions_left = len(channels)
        return self.execute_command("SUBSCRIBE", *channels, apply_timeout=False)


class RedisFactory(protocol.ReconnectingClientFactory):
    maxDelay = 10
    protocol = RedisProtocol
    noisy = False

    def __init__(self, uuid, dbid, poolsize, isLazy=False, handler=None, charset="utf-8", password=None,
                 replyTimeout=None, convertNumbers=True):
        self.uuid = uuid
        self.dbid = dbid
        self.poolsize = poolsize
        self.isLazy = isLazy
        self.charset = charset
        self.password = password
        self.replyTimeout = replyTimeout
        self.convertNumbers = convertNumbers
        self.pool = []
        self.size = 0
        self.deferred = defer.Deferred()
        self._waiting = []  # getConnection() calls waiting for a ready connection
        self.handler = (handler or ConnectionHandler)(self)

    def buildProtocol(self, addr):
        p = self.protocol(self.charset, replyTimeout=self.replyTimeout, password=self.password, dbid=self.dbid,
                          convertNumbers=self.convertNumbers)
        p.factory = self
        p.whenConnected().addCallback(self.addConnection)
        return p

    def addConnection(self, conn):
        self.resetDelay()
        conn.whenDisconnected().addCallback(self.delConnection)
        self.pool.append(conn)
        self.size = len(self.pool)
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(conn)
        if self.deferred is not None and self.size == self.poolsize:
            deferred, self.deferred = self.deferred, None
            deferred.callback(self.handler)

    def delConnection(self, conn):
        if conn in self.pool:
            self.pool.remove(conn)
        self.size = len(self.pool)

    def connectionError(self, why):
        if self.deferred is not None:
            deferred, self.deferred = self.deferred, None
            deferred.errback(ValueError(why))

    def getConnection(self, peek=True):
        if not self.continueTrying and not self.size:
            return defer.fail(ConnectionError("Not connected"))
        for conn in self.pool:
            if conn.connected:
                return defer.succeed(conn)
        d = defer.Deferred()
        self._waiting.append(d)
        return d


class ConnectionHandler:
    def __init__(self, factory):
        self._factory = factory
        self._connected = factory.deferred

    def disconnect(self):
        self._factory.continueTrying = 0
        for conn in list(self._factory.pool):
            conn.transport.loseConnection()
        return defer.succeed(None)

    def __getattr__(self, method):
        def wrapper(*args, **kwargs):
            d = self._factory.getConnection()
            d.addCallback(lambda conn: getattr(conn, method)(*args, **kwargs))
            return d

        return wrapper

    def __repr__(self):
        return "<Redis Connection (harness txredisapi): %d connection(s)>" % self._factory.size


class UnixConnectionHandler(ConnectionHandler):
    pass
