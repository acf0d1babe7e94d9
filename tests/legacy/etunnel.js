#!/usr/bin/env node
// A legacy rhost peer (extra-tunnel 1.0.6, `etunnel server|client`) for
// uptun's end-to-end tests, written only from the protocol as issue 12
// describes it; node's standard library only, as the original was node.
//
//   node etunnel.js server --tunnel HOST:PORT --channel /ssh --key KEY --token TOKEN --target HOST:PORT
//   node etunnel.js client --tunnel HOST:PORT --channel /ssh --token TOKEN --listen 127.0.0.1:0
//
// stdout carries one word per line for the tests: `ready` (agent upgraded),
// `listening PORT` (client upgraded and bound), `refused` (the tunnel closed
// before a 101, which is how the original refuses; `refused STATUS LINE` if
// it answered something else), `pong` (a ping came back). Diagnostics go to
// stderr. Like the original there is no flow control: node buffers every
// write, and sockets do not half-close (allowHalfOpen false).
//
// Test-only options: --read-rate BYTES_PER_SEC reads the tunnel slowly
// (pausing the socket, so TCP pushes back); --send-ping MS sends a ping that
// often.
'use strict';

const net = require('net');
const { parseArgs } = require('util');

// A packet: [size u16 BE, whole packet incl. this header][event: 2 ASCII
// bytes][set u32 BE][tag u32 BE][body]. Events: c+ opened, c- closed,
// d+ data, pi ping, po pong (set and tag 0).
const HEADER = 12;
// Bodies above this go as several packets.
const MAX_BODY = 32768;
// A handshake answer longer than this is not rhost's 101.
const MAX_HEAD = 16384;

function packet(event, set, tag, body) {
  const p = Buffer.alloc(HEADER + body.length);
  p.writeUInt16BE(p.length, 0);
  p.write(event, 2, 2, 'latin1');
  p.writeUInt32BE(set, 4);
  p.writeUInt32BE(tag, 8);
  body.copy(p, HEADER);
  return p;
}

function send(tunnel, event, set, tag, body = Buffer.alloc(0)) {
  let at = 0;
  do {
    tunnel.write(packet(event, set, tag, body.subarray(at, at + MAX_BODY)));
    at += MAX_BODY;
  } while (at < body.length);
}

// Splits the byte stream into packets; a size below the header is garbage
// that no resynchronisation can recover from, so it ends the link.
function packetParser(onPacket, onGarbage) {
  let pending = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 2) {
      const size = pending.readUInt16BE(0);
      if (size < HEADER) return onGarbage(`packet size ${size} is below the ${HEADER}-byte header`);
      if (pending.length < size) break;
      const event = pending.toString('latin1', 2, 4);
      onPacket(event, pending.readUInt32BE(4), pending.readUInt32BE(8), pending.subarray(HEADER, size));
      pending = pending.subarray(size);
    }
  };
}

function hostPort(text, flag) {
  const at = text ? text.lastIndexOf(':') : -1;
  if (at < 0) fail(`--${flag} wants HOST:PORT, got ${text}`);
  return { host: text.slice(0, at), port: Number(text.slice(at + 1)) };
}

function fail(why) {
  process.stderr.write(`etunnel: ${why}\n`);
  process.exit(2);
}

// Dials the tunnel, upgrades with `userAgent`, then hands every packet to
// `onPacket`; answers pings itself. `onReady` runs once the 101 arrived.
function openTunnel(opts, userAgent, onReady, onPacket) {
  const { host, port } = hostPort(opts.tunnel, 'tunnel');
  const tunnel = net.connect({ host, port, allowHalfOpen: false });
  tunnel.on('connect', () => {
    tunnel.write(`HEAD ${opts.channel} HTTP/1.1\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n` +
      `Host: ${opts.tunnel}\r\nOrigin: http://${opts.tunnel}\r\nUser-Agent: ${userAgent}\r\n\r\n`);
  });
  const parse = packetParser((event, set, tag, body) => {
    if (event === 'pi') send(tunnel, 'po', 0, 0);
    else if (event === 'po') console.log('pong');
    else onPacket(event, set, tag, body);
  }, (why) => {
    process.stderr.write(`etunnel: closing the tunnel: ${why}\n`);
    tunnel.destroy();
  });
  const readSlowly = rateLimiter(tunnel, Number(opts['read-rate'] || 0));
  let head = Buffer.alloc(0);
  let upgraded = false;
  tunnel.on('data', (chunk) => {
    readSlowly(chunk.length);
    if (upgraded) return parse(chunk);
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > MAX_HEAD) refuse(tunnel, 'an answer head without an end');
      return;
    }
    const status = head.toString('latin1', 0, head.indexOf('\r\n'));
    if (!/^HTTP\/1\.1 101 /.test(status)) return refuse(tunnel, status);
    upgraded = true;
    if (opts['send-ping']) setInterval(() => send(tunnel, 'pi', 0, 0), Number(opts['send-ping']));
    onReady(tunnel);
    if (head.length > end + 4) parse(head.subarray(end + 4));
  });
  tunnel.on('error', (err) => process.stderr.write(`etunnel: tunnel ${opts.tunnel}: ${err.message}\n`));
  tunnel.on('close', () => {
    if (!upgraded) refuse(tunnel, '');
    process.stderr.write('etunnel: the tunnel closed\n');
    process.exit(0);
  });
  return tunnel;
}

function refuse(tunnel, answer) {
  console.log(answer ? `refused ${answer}` : 'refused');
  tunnel.destroy();
  process.exit(1);
}

// Paces reading to `rate` bytes per second: after each chunk the socket is
// paused for as long as that chunk takes at the rate (idle time earns no
// burst), so the kernel's buffers fill and TCP pushes back.
function rateLimiter(socket, rate) {
  if (!rate) return () => {};
  let next = 0; // when reading may go on
  return (n) => {
    const now = Date.now();
    next = Math.max(next, now) + (n * 1000) / rate;
    socket.pause();
    setTimeout(() => socket.resume(), next - now);
  };
}

// The agent ("server" role): each `c+ set tag` dials the target, with no
// acceptance sent back; the target's bytes go back as `d+`, its close as `c-`.
function agent(opts) {
  for (const flag of ['key', 'token', 'target']) if (opts[flag] === undefined) fail(`server wants --${flag}`);
  const target = hostPort(opts.target, 'target');
  const streams = new Map(); // "set tag" -> target socket
  const userAgent = `tunnel/server ${encodeURIComponent(opts.key)} ${encodeURIComponent(opts.token)}`;
  const tunnel = openTunnel(opts, userAgent, () => console.log('ready'), (event, set, tag, body) => {
    const id = `${set} ${tag}`;
    if (event === 'c+') {
      const socket = net.connect(target);
      streams.set(id, socket);
      const mine = () => streams.get(id) === socket;
      socket.on('data', (data) => mine() && send(tunnel, 'd+', set, tag, data));
      socket.on('error', (err) => process.stderr.write(`etunnel: target ${opts.target}: ${err.message}\n`));
      socket.on('close', () => {
        if (!mine()) return;
        streams.delete(id);
        send(tunnel, 'c-', set, tag);
      });
    } else if (event === 'd+') {
      // Data for a stream already closed raced its c-: dropped.
      const socket = streams.get(id);
      if (socket) socket.write(body);
    } else if (event === 'c-') {
      const socket = streams.get(id);
      streams.delete(id);
      if (socket) socket.end();
    }
  });
}

// The client: each accepted local connection is a new id, announced as
// `c+ 0 id`; its bytes go as `d+ 0 id`, its end (a half-close too) as `c- 0 id`.
function client(opts) {
  if (opts.token === undefined) fail('client wants --token');
  const listen = hostPort(opts.listen || '127.0.0.1:0', 'listen');
  const locals = new Map(); // id -> local socket
  let lastId = 0;
  const userAgent = `tunnel/client ${encodeURIComponent(opts.token)}`;
  const onReady = (tunnel) => {
    const server = net.createServer({ allowHalfOpen: false }, (local) => {
      const id = ++lastId;
      locals.set(id, local);
      send(tunnel, 'c+', 0, id);
      const closed = () => {
        if (locals.get(id) !== local) return;
        locals.delete(id);
        send(tunnel, 'c-', 0, id);
      };
      local.on('data', (data) => locals.get(id) === local && send(tunnel, 'd+', 0, id, data));
      local.on('end', closed);
      local.on('close', closed);
      local.on('error', (err) => process.stderr.write(`etunnel: local connection ${id}: ${err.message}\n`));
    });
    server.listen(listen.port, listen.host, () => console.log(`listening ${server.address().port}`));
  };
  openTunnel(opts, userAgent, onReady, (event, set, tag, body) => {
    const local = locals.get(tag);
    if (!local) return; // raced its own c-
    if (event === 'd+') local.write(body);
    else if (event === 'c-') {
      locals.delete(tag);
      local.end();
    }
  });
}

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: Object.fromEntries(['tunnel', 'channel', 'key', 'token', 'target', 'listen', 'read-rate', 'send-ping']
    .map((name) => [name, { type: 'string' }])),
});
if (!opts.tunnel || !opts.channel) fail('usage: etunnel.js server|client --tunnel HOST:PORT --channel /NAME …');
if (positionals[0] === 'server') agent(opts);
else if (positionals[0] === 'client') client(opts);
else fail(`unknown role ${positionals[0]}: server or client`);
