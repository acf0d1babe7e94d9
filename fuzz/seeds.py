#!/usr/bin/env python3
"""Writes the seed corpus in corpus/<target>/. The bytes are spelled out
here from docs/protocol.md, not made by the crate's encoder, so a mistake
shared by encoder and decoder cannot shape the seeds.

Every seed is a fuzz input (see src/lib.rs): a first byte, then (length,
delay) pairs that cut the data into reads, then the data. b"\\x00" + data
is the data in one read followed by EOF.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def frame(kind, stream, payload=b""):
    return struct.pack(">IBI", len(payload), kind, stream) + payload


def one_read(data, keep_open=False):
    return bytes([0x80 if keep_open else 0]) + data


def cut(data, sizes, delays=None, keep_open=False):
    """Reads of the given sizes (each < 128), the rest in one last read."""
    delays = delays or [0] * len(sizes)
    head = bytes([len(sizes) | (0x80 if keep_open else 0)])
    for size, delay in zip(sizes, delays):
        head += bytes([size, delay])
    return head + data


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


OPEN, ACCEPT, REFUSE, DATA, WINDOW, FIN, RESET, PING, PONG, GOAWAY, RESIZE = range(1, 12)
FRAMES = {
    "open": frame(OPEN, 1, b"\x03web" + b"203.0.113.9:5555"),
    "accept": frame(ACCEPT, 1),
    "refuse": frame(REFUSE, 1, b"could not reach the target"),
    "data": frame(DATA, 1, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    "window": frame(WINDOW, 1, struct.pack(">I", 256 * 1024)),
    "fin": frame(FIN, 1),
    "reset": frame(RESET, 1, b"reset by peer"),
    "ping": frame(PING, 0, bytes(range(8))),
    "pong": frame(PONG, 0, bytes(range(8))),
    "goaway": frame(GOAWAY, 0, b"shutting down"),
    "resize": frame(RESIZE, 3, struct.pack(">HH", 80, 24)),
}
ALL = b"".join(FRAMES.values())

for name, wire in FRAMES.items():
    write("frame_decoder", name, one_read(wire))
write("frame_decoder", "all", one_read(ALL))
write("frame_decoder", "all-byte-by-byte", cut(ALL, [1] * 127))
write("frame_decoder", "all-odd-reads", cut(ALL, [3, 7, 11, 13, 17, 19, 23, 29]))
write("frame_decoder", "truncated-payload", one_read(ALL[:-3]))
write("frame_decoder", "truncated-header", one_read(FRAMES["data"][:5]))
write("frame_decoder", "too-large", one_read(struct.pack(">IBI", (1 << 20) + 1, DATA, 1)))
write("frame_decoder", "largest-claimed", one_read(struct.pack(">IBI", 1 << 20, DATA, 1) + b"x" * 100))
write("frame_decoder", "unknown-type", one_read(frame(0x42, 1, b"??")))
write("frame_decoder", "big-data", cut(frame(DATA, 5, bytes(i % 251 for i in range(20000))), [100, 9, 127]))

AGENT = (
    b"HEAD /_uptun/link HTTP/1.1\r\nHost: tunnel.example.com\r\nConnection: Upgrade\r\n"
    b"Upgrade: tcp\r\nUser-Agent: uptun-agent/0.1.0\r\nUptun-Version: 1\r\n"
    b"Uptun-Window: 262144\r\nAuthorization: Bearer not-a-real-token\r\n"
    b"Uptun-Channels: ssh, web\r\nUptun-Name: laptop\r\n\r\n"
)
CLIENT = (
    b"GET /_uptun/link HTTP/1.1\r\nhost: t\r\nconnection: keep-alive, upgrade\r\n"
    b"upgrade: websocket\r\nuser-agent: UPTUN-CLIENT/0.1.0\r\nuptun-version: 1\r\n"
    b"authorization: bearer not-a-real-token\r\n\r\n"
)
GET = b"GET /index.html?q=1 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"
POST = b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
HEALTH = b"GET /_uptun/health HTTP/1.1\r\nHost: x\r\n\r\n"
ACCEPTED = (
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
    b"Uptun-Version: 1\r\nUptun-Window: 262144\r\n\r\n"
)
REFUSED = (
    b"HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 12\r\nUptun-Reason: wrong token\r\nConnection: close\r\n\r\nwrong token\n"
)
WS_AGENT = (
    b"GET /_uptun/link HTTP/1.1\r\nHost: tunnel.example.com\r\nConnection: Upgrade\r\n"
    b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nUser-Agent: uptun-agent/0.1.0\r\n"
    b"Uptun-Version: 1\r\nAuthorization: Bearer not-a-real-token\r\nUptun-Channels: web\r\n\r\n"
)
# The answer to WS_AGENT's key (RFC 6455's example), then a binary message.
WS_ACCEPTED = (
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nUptun-Version: 1\r\n"
    b"Uptun-Window: 262144\r\n\r\n\x82\x02hi"
)
NOT_UPTUN = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
SSH = b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n"
# A TLS 1.2 record carrying the start of a ClientHello with an SNI.
TLS = bytes.fromhex("16030100c4010000c00303") + bytes(range(32)) + bytes.fromhex(
    "000004130113020100009300000014001200000f7777772e6578616d706c652e636f6d"
)
BIG_HEAD = b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * (16 * 1024 + 100) + b"\r\n\r\n"

write("handshake", "agent", one_read(AGENT))
write("handshake", "client", one_read(CLIENT))
write("handshake", "agent-in-small-reads", cut(AGENT, [1, 2, 3, 5, 8, 13, 21, 34]))
write("handshake", "agent-truncated", one_read(AGENT[:-2]))
write("handshake", "agent-bad-version", one_read(AGENT.replace(b"Version: 1", b"Version: 9")))
write("handshake", "get", one_read(GET))
write("handshake", "accepted-then-frames", one_read(ACCEPTED + FRAMES["ping"] + FRAMES["open"]))
write("handshake", "accepted-in-small-reads", cut(ACCEPTED + FRAMES["ping"], [1, 4, 9, 16, 25, 36]))
write("handshake", "refused", one_read(REFUSED))
write("handshake", "websocket-agent", one_read(WS_AGENT))
write("handshake", "websocket-accepted", cut(WS_ACCEPTED, [5, 50, 100]))
write("handshake", "not-uptun", one_read(NOT_UPTUN))
write("handshake", "answer-truncated", one_read(ACCEPTED[:40]))
write("handshake", "too-large", cut(BIG_HEAD, [127] * 20))
write("handshake", "garbage", one_read(bytes(range(256))))

write("classify", "agent", one_read(AGENT + FRAMES["ping"], keep_open=True))
write("classify", "agent-delayed-0.7s", cut(AGENT, [0], [70], keep_open=True))
write("classify", "client", one_read(CLIENT, keep_open=True))
write("classify", "get", one_read(GET, keep_open=True))
write("classify", "get-in-small-reads", cut(GET, [1, 1, 1, 1, 2, 3, 5, 8], [0, 10, 0, 0, 20], keep_open=True))
write("classify", "post", one_read(POST))
write("classify", "health", one_read(HEALTH))
write("classify", "ssh", one_read(SSH, keep_open=True))
write("classify", "ssh-split", cut(SSH, [2, 2], [0, 30], keep_open=True))
write("classify", "tls-client-hello", one_read(TLS, keep_open=True))
write("classify", "silence", one_read(b"", keep_open=True))
write("classify", "gone", one_read(b""))
write("classify", "two-bytes-then-eof", one_read(b"GE"))
write("classify", "get-truncated", one_read(GET[:30], keep_open=True))
write("classify", "get-truncated-eof", one_read(GET[:30]))
write("classify", "malformed", one_read(b"GET \x01\x02 HTTP/1.1\r\n\r\n"))
write("classify", "too-large", cut(BIG_HEAD, [127] * 20, keep_open=True))

# Heads just under the 16 KiB limit, for the fuzzer to push across it.
def padded(head_start, total):
    pad = total - len(head_start) - len(b"X-Pad: \r\n\r\n")
    return head_start + b"X-Pad: " + b"p" * pad + b"\r\n\r\n"


write("handshake", "accepted-near-limit", cut(padded(ACCEPTED[:-2], 16 * 1024 - 8), [127] * 4))
write("handshake", "agent-near-limit", one_read(padded(AGENT[:-2], 16 * 1024 - 8)))
write("classify", "get-near-limit", cut(padded(GET[:-2], 16 * 1024 - 8), [127] * 4, keep_open=True))

# The link target is the server's side: the peer is a dialer, so its own
# streams have even ids; stream 1 is the one the server opens.
def link_seed(*frames, keep_open=False):
    return one_read(b"".join(frames), keep_open)


PEER_OPEN = frame(OPEN, 2, b"\x03web" + b"198.51.100.7:40000")
write("link", "peer-opens-sends-fins", link_seed(PEER_OPEN, frame(DATA, 2, b"hello"), frame(FIN, 2)))
write("link", "peer-opens-refused", link_seed(frame(OPEN, 6, b"\x03ssh1.2.3.4:5"), frame(DATA, 6, b"x")))
write("link", "ours-accepted-echoed", link_seed(
    frame(ACCEPT, 1), frame(WINDOW, 1, struct.pack(">I", 65536)), frame(DATA, 1, b"back"), frame(FIN, 1)))
write("link", "ours-refused", link_seed(frame(REFUSE, 1, b"could not reach the target")))
write("link", "ours-reset", link_seed(frame(ACCEPT, 1), frame(RESET, 1, b"reset by peer")))
write("link", "ping-pong-goaway", link_seed(
    frame(PING, 0, bytes(8)), frame(PONG, 0, bytes(8)), frame(GOAWAY, 0, b"bye")))
write("link", "resize", link_seed(PEER_OPEN, frame(RESIZE, 2, struct.pack(">HH", 80, 24))))
write("link", "data-beyond-window", link_seed(PEER_OPEN, frame(DATA, 2, b"z" * 16385)))
write("link", "window-overflow", link_seed(
    frame(ACCEPT, 1), frame(WINDOW, 1, b"\xff\xff\xff\xff"), frame(WINDOW, 1, b"\xff\xff\xff\xff")))
write("link", "unknown-stream", link_seed(frame(DATA, 8, b"late"), frame(FIN, 10), frame(WINDOW, 12, bytes(4))))
write("link", "peer-silent-after-open", link_seed(PEER_OPEN, keep_open=True))
write("link", "slow-frames", cut(PEER_OPEN + frame(DATA, 2, b"abc") + frame(FIN, 2),
                                [5, 20, 4], [0, 100, 250], keep_open=True))

# rhost's legacy protocol (docs/rhost-compat.md; issue 12 spells it out):
# packets are `size u16 BE (the whole packet) | event, 2 ASCII bytes | set
# u32 BE | tag u32 BE | body`, after rhost's HEAD with its User-Agent.
def packet(event, tag, body=b"", set_=0, size=None):
    size = 12 + len(body) if size is None else size
    return struct.pack(">H2sII", size, event, set_, tag) + body


PACKETS = {
    "open": packet(b"c+", 1),
    "data": packet(b"d+", 1, b"GET / HTTP/1.0\r\n\r\n"),
    "close": packet(b"c-", 1),
    "ping": packet(b"pi", 0),
    "pong": packet(b"po", 0),
    "client-set": packet(b"d+", 77, b"SSH-2.0-x\r\n", set_=3),
}
LEGACY_ALL = b"".join(PACKETS.values())
for name, wire in PACKETS.items():
    write("legacy", name, one_read(wire))
write("legacy", "all", one_read(LEGACY_ALL))
write("legacy", "all-byte-by-byte", cut(LEGACY_ALL, [1] * 127))
write("legacy", "all-odd-reads", cut(LEGACY_ALL, [3, 7, 11, 13, 17, 19]))
# Our largest body, and one byte over it (rhost never sends that; we take it).
write("legacy", "body-32k", one_read(packet(b"d+", 5, bytes(i % 251 for i in range(32768)))))
write("legacy", "body-over-32k", cut(packet(b"d+", 5, b"o" * 32769), [127] * 8))
write("legacy", "largest-claimed", one_read(packet(b"d+", 1, b"x" * 100, size=0xFFFF)))
write("legacy", "too-short", one_read(packet(b"d+", 1, size=5)))
write("legacy", "unknown-event", one_read(packet(b"\x1b[", 1)))
write("legacy", "truncated-header", one_read(PACKETS["data"][:7]))
write("legacy", "truncated-body", one_read(PACKETS["data"][:-3]))

LEGACY_AGENT = (
    b"HEAD /ssh HTTP/1.1\r\nHost: tunnel.example.com\r\nOrigin: http://tunnel.example.com\r\n"
    b"Upgrade: tcp\r\nConnection: Upgrade\r\nUser-Agent: tunnel/server ad%20min not-a-real%2Ftoken\r\n\r\n"
)
LEGACY_CLIENT = (
    b"HEAD / HTTP/1.1\r\nHost: t\r\nOrigin: http://t\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n"
    b"User-Agent: tunnel/client not-a-real-token\r\n\r\n"
)
write("legacy", "agent-head-then-packets", one_read(LEGACY_AGENT + PACKETS["pong"] + PACKETS["data"]))
write("legacy", "client-head-then-packets", one_read(LEGACY_CLIENT + PACKETS["open"] + PACKETS["data"]))
write("legacy", "agent-head-one-word", one_read(LEGACY_AGENT.replace(b" not-a-real%2Ftoken", b"")))
write("legacy", "client-head-bad-utf8", one_read(LEGACY_CLIENT.replace(b"not-a-real-token", b"%FF%FE")))
write("legacy", "get-with-legacy-agent", one_read(LEGACY_AGENT.replace(b"HEAD", b"GET")))
# The User-Agent alone: the target also reads the input as one.
write("legacy", "ua-agent", one_read(b"tunnel/server k%20ey t%25ok"))
write("legacy", "ua-client", one_read(b"Tunnel/Client tok"))
write("legacy", "ua-three-words", one_read(b"tunnel/server a b c"))
