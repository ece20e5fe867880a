# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A stand-in for a container runtime's NRI side, for tests/kubernetes/nri.sh.

No NRI runtime runs on the test machines (Debian 12's containerd is 1.6),
so this plays containerd's part on the wire, written for weir from NRI's
api.proto, its multiplexer and ttrpc's framing (field numbers, method
names, frame layouts): it listens on a unix socket, lets `weir nri` connect
and register, and sends it the requests a runtime sends, built from the
fixture files in fixtures/ (see fixtures/README.md). Its protobuf encoder
and decoder are its own (below), not the plugin's protobuf-c code, so the
two sides check each other.

Driven line by line on stdin; one answer line per command on stdout:
  accept                   wait for the plugin; "registered NAME IDX"
  configure                "events N" (the subscribed event bits)
  sync FIXTURE [K=V...]    Synchronize; "ok more=B" or "error CODE MESSAGE"
  run|stop|remove FIXTURE [K=V...]      the pod events (per-event methods)
  statechange EVENT FIXTURE [K=V...]    the same through StateChange (older NRI)
  call SERVICE METHOD      an empty request; "ok" or "error CODE MESSAGE"
  garbage                  a request whose payload is no protobuf
  shutdown                 Shutdown; "ok"
  last-ms                  how long the plugin took to answer the last call: "ms N"
  close                    close the connection (a runtime restart); "closed"
  raw FILE                 send FILE's bytes on the trunk as they are; "sent"
K=V replaces @K@ in the fixture. Usage: nri_runtime.py SOCKET FIXTURE_DIR
"""
import json
import os
import socket
import struct
import sys
import time

TIMEOUT = 10.0

# --- protobuf, by hand ------------------------------------------------------
# A schema: field name -> (number, kind); kind is 'string', 'bytes', 'varint',
# 'bool', a message name, or one of those in a list (repeated), or 'map'
# (map<string, string>: repeated entries of key 1, value 2).
SCHEMAS = {
    'Request': {'service': (1, 'string'), 'method': (2, 'string'), 'payload': (3, 'bytes'),
                'timeout_nano': (4, 'varint'), 'metadata': (5, ['KeyValue'])},
    'Response': {'status': (1, 'Status'), 'payload': (2, 'bytes')},
    'Status': {'code': (1, 'varint'), 'message': (2, 'string')},
    'KeyValue': {'key': (1, 'string'), 'value': (2, 'string')},
    'RegisterPluginRequest': {'plugin_name': (1, 'string'), 'plugin_idx': (2, 'string'),
                              'NRI_version': (3, 'string')},
    'Empty': {},
    'ConfigureRequest': {'config': (1, 'string'), 'runtime_name': (2, 'string'),
                         'runtime_version': (3, 'string'), 'registration_timeout': (4, 'varint'),
                         'request_timeout': (5, 'varint'), 'NRI_version': (6, 'string')},
    'ConfigureResponse': {'events': (2, 'varint')},
    'SynchronizeRequest': {'pods': (1, ['PodSandbox']), 'containers': (2, ['Container']),
                           'more': (3, 'bool')},
    'SynchronizeResponse': {'update': (1, ['Empty']), 'more': (2, 'bool')},
    'PodRequest': {'pod': (1, 'PodSandbox')},
    'StateChangeEvent': {'event': (1, 'varint'), 'pod': (2, 'PodSandbox'),
                         'container': (3, 'Container')},
    'PodSandbox': {'id': (1, 'string'), 'name': (2, 'string'), 'uid': (3, 'string'),
                   'namespace': (4, 'string'), 'labels': (5, 'map'), 'annotations': (6, 'map'),
                   'runtime_handler': (7, 'string'), 'linux': (8, 'LinuxPodSandbox'),
                   'pid': (9, 'varint'), 'ips': (10, ['string'])},
    'LinuxPodSandbox': {'pod_overhead': (1, 'LinuxResources'),
                        'pod_resources': (2, 'LinuxResources'),
                        'cgroup_parent': (3, 'string'), 'cgroups_path': (4, 'string'),
                        'namespaces': (5, ['LinuxNamespace']),
                        'resources': (6, 'LinuxResources')},
    'LinuxNamespace': {'type': (1, 'string'), 'path': (2, 'string')},
    'LinuxResources': {'memory': (1, 'LinuxMemory'), 'cpu': (2, 'LinuxCPU')},
    'LinuxMemory': {'limit': (1, 'OptionalInt64')},
    'LinuxCPU': {'shares': (1, 'OptionalUInt64'), 'quota': (2, 'OptionalInt64'),
                 'period': (3, 'OptionalUInt64')},
    'OptionalInt64': {'value': (1, 'varint')},
    'OptionalUInt64': {'value': (1, 'varint')},
    'Container': {'id': (1, 'string'), 'pod_sandbox_id': (2, 'string'), 'name': (3, 'string'),
                  'state': (4, 'varint')},
}


def varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wt, payload):
    return varint(num << 3 | wt) + payload


def encode_value(kind, v):
    if kind == 'string':
        b = v.encode()
        return 2, varint(len(b)) + b
    if kind == 'bytes':
        return 2, varint(len(v)) + v
    if kind in ('varint', 'bool'):
        return 0, varint(int(v))
    b = encode(kind, v)
    return 2, varint(len(b)) + b


def encode(name, msg):
    schema = SCHEMAS[name]
    out = b''
    for key, v in msg.items():
        if key not in schema:
            raise ValueError('%s has no field %s' % (name, key))
        num, kind = schema[key]
        if kind == 'map':
            for k, val in v.items():
                entry = encode('KeyValue', {'key': k, 'value': val})
                out += field(num, 2, varint(len(entry)) + entry)
        elif isinstance(kind, list):
            for item in v:
                wt, p = encode_value(kind[0], item)
                out += field(num, wt, p)
        else:
            wt, p = encode_value(kind, v)
            out += field(num, wt, p)
    return out


def read_varint(b, i):
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7f) << shift
        shift += 7
        if not c & 0x80:
            return n, i


def decode(name, b):
    """B as message NAME; fields the schema lacks go to '?N' (kept, checked)."""
    schema = SCHEMAS[name]
    by_num = {num: (key, kind) for key, (num, kind) in schema.items()}
    out, i = {}, 0
    while i < len(b):
        tag, i = read_varint(b, i)
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            v, i = read_varint(b, i)
        elif wt == 2:
            n, i = read_varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError('%s: wire type %d' % (name, wt))
        key, kind = by_num.get(num, ('?%d' % num, 'bytes'))
        rep = isinstance(kind, list)
        k = kind[0] if rep else kind
        if k == 'string':
            v = v.decode()
        elif k in SCHEMAS:
            v = decode(k, v)
        elif k == 'bool':
            v = bool(v)
        if rep or kind == 'map':
            out.setdefault(key, []).append(v)
        else:
            out[key] = v
    return out


# --- the trunk and ttrpc ------------------------------------------------------
PLUGIN_CONN, RUNTIME_CONN = 1, 2
REQUEST, RESPONSE = 1, 2


class Trunk:
    def __init__(self, sock):
        self.sock = sock
        self.raw = b''
        self.streams = {PLUGIN_CONN: b'', RUNTIME_CONN: b''}
        self.next_stream = 1
        self.last_ms = -1

    def send(self, conn, stream, mtype, payload, split=None):
        msg = struct.pack('>IIBB', len(payload), stream, mtype, 0) + payload
        # SPLIT: the message cut into that many trunk frames (a writer may).
        k = split or 1
        for j in range(k):
            part = msg[j * len(msg) // k:(j + 1) * len(msg) // k]
            self.sock.sendall(struct.pack('>II', conn, len(part)) + part)

    def recv(self):
        """The next ttrpc message: (conn, stream, type, payload)."""
        while True:
            for conn, buf in self.streams.items():
                if len(buf) >= 10:
                    n, stream, mtype, _flags = struct.unpack('>IIBB', buf[:10])
                    if len(buf) >= 10 + n:
                        self.streams[conn] = buf[10 + n:]
                        return conn, stream, mtype, buf[10:10 + n]
            moved = False
            while len(self.raw) >= 8:
                conn, n = struct.unpack('>II', self.raw[:8])
                if len(self.raw) < 8 + n:
                    break
                if conn not in self.streams:
                    raise ValueError('a frame on stream %d' % conn)
                self.streams[conn] += self.raw[8:8 + n]
                self.raw = self.raw[8 + n:]
                moved = True
            if moved:
                continue
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError('the plugin closed the connection')
            self.raw += chunk

    def call(self, method, req_name, req, resp_name, split=None, service='nri.pkg.api.v1alpha1.Plugin'):
        stream = self.next_stream
        self.next_stream += 2
        payload = encode(req_name, req) if req_name else req
        rq = encode('Request', {'service': service, 'method': method, 'payload': payload,
                                'timeout_nano': 2 * 10**9})
        t0 = time.monotonic()
        self.send(PLUGIN_CONN, stream, REQUEST, rq, split)
        conn, got, mtype, data = self.recv()
        self.last_ms = int((time.monotonic() - t0) * 1000)
        if (conn, got, mtype) != (PLUGIN_CONN, stream, RESPONSE):
            raise ValueError('answer on stream %d/%d type %d, want %d/%d type 2' %
                             (conn, got, mtype, PLUGIN_CONN, stream))
        r = decode('Response', data)
        st = r.get('status')
        if st and st.get('code'):
            return 'error %d %s' % (st['code'], st.get('message', ''))
        return decode(resp_name, r.get('payload', b''))


def fixture(fdir, name, subst):
    with open(os.path.join(fdir, name)) as f:
        text = f.read()
    for kv in subst:
        k, v = kv.split('=', 1)
        text = text.replace('@%s@' % k, v)
    if '@' in text.replace('\\u0040', ''):
        left = text[text.index('@'):][:40]
        raise ValueError('%s: a placeholder left: %s' % (name, left))
    return json.loads(text)


EVENTS = {'run': 'RunPodSandbox', 'stop': 'StopPodSandbox', 'remove': 'RemovePodSandbox'}
EVENT_NUM = {'run': 1, 'stop': 2, 'remove': 3}


def main():
    path, fdir = sys.argv[1], sys.argv[2]
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    ls.listen(4)
    print('listening', flush=True)
    t = None
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        cmd, args = words[0], words[1:]
        try:
            if cmd == 'accept':
                ls.settimeout(TIMEOUT)
                s, _ = ls.accept()
                s.settimeout(TIMEOUT)
                t = Trunk(s)
                conn, stream, mtype, data = t.recv()
                rq = decode('Request', data)
                if (conn, mtype, rq.get('service'), rq.get('method')) != \
                        (RUNTIME_CONN, REQUEST, 'nri.pkg.api.v1alpha1.Runtime', 'RegisterPlugin'):
                    raise ValueError('first message: %r on %d' % (rq, conn))
                reg = decode('RegisterPluginRequest', rq.get('payload', b''))
                t.send(RUNTIME_CONN, stream, RESPONSE,
                       encode('Response', {'payload': encode('Empty', {})}))
                ans = 'registered %s %s' % (reg.get('plugin_name'), reg.get('plugin_idx'))
            elif cmd == 'configure':
                r = t.call('Configure', 'ConfigureRequest',
                           {'runtime_name': 'stand-in', 'runtime_version': '1.7-fixture',
                            'registration_timeout': 5000, 'request_timeout': 2000,
                            'NRI_version': 'v0.6.1'}, 'ConfigureResponse')
                ans = r if isinstance(r, str) else 'events %d' % r.get('events', 0)
            elif cmd == 'sync':
                req = fixture(fdir, args[0], args[1:])
                r = t.call('Synchronize', 'SynchronizeRequest', req, 'SynchronizeResponse',
                           split=3)
                ans = r if isinstance(r, str) else 'ok more=%s' % r.get('more', False)
            elif cmd in EVENTS:
                pod = fixture(fdir, args[0], args[1:])
                r = t.call(EVENTS[cmd], 'PodRequest', {'pod': pod}, 'Empty')
                ans = r if isinstance(r, str) else 'ok'
            elif cmd == 'statechange':
                pod = fixture(fdir, args[1], args[2:])
                r = t.call('StateChange', 'StateChangeEvent',
                           {'event': EVENT_NUM[args[0]], 'pod': pod}, 'Empty')
                ans = r if isinstance(r, str) else 'ok'
            elif cmd == 'call':
                r = t.call(args[1], 'Empty', {}, 'Empty', service=args[0])
                ans = r if isinstance(r, str) else 'ok'
            elif cmd == 'garbage':
                r = t.call('RunPodSandbox', None, b'\x0a\xff\xff\xff', 'Empty')
                ans = r if isinstance(r, str) else 'ok'
            elif cmd == 'shutdown':
                r = t.call('Shutdown', 'Empty', {}, 'Empty')
                ans = r if isinstance(r, str) else 'ok'
            elif cmd == 'last-ms':
                ans = 'ms %d' % t.last_ms
            elif cmd == 'close':
                t.sock.close()
                t = None
                ans = 'closed'
            elif cmd == 'raw':
                with open(args[0], 'rb') as f:
                    t.sock.sendall(f.read())
                ans = 'sent'
            else:
                ans = 'bad command %s' % cmd
        except (OSError, EOFError, ValueError, KeyError, IndexError) as e:
            ans = 'failed %s: %s' % (type(e).__name__, e)
        print(ans.replace('\n', ' '), flush=True)


if __name__ == '__main__':
    main()
