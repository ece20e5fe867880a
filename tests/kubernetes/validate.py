# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Offline checks of deploy/kubernetes/ (make test; no cluster, no network).

1. Every object of weir.yaml is read into the Kubernetes API types of the
   python3-kubernetes models, strictly: an unknown field, a value of the
   wrong type or a missing required field is an error naming its path.
2. The DaemonSet is checked for what weir needs: privileged, hostPID, the
   host paths, probes that run `weir health`, the Prometheus annotations on
   the metrics port, no ServiceAccount token, every option of each command
   one that `weir CMD --help` lists, and each ConfigMap policy passes
   `weir policy check`.
3. The Helm chart is rendered by the small renderer below (the subset of
   Go templates the chart uses, nothing else: an unknown action is an error)
   with its default values, and must give the same objects as weir.yaml
   (less the Namespace); rendered with the NRI plugin off it must still be
   valid.

Usage: validate.py WEIR_BINARY
"""
import os
import re
import subprocess
import sys
import tempfile

import yaml
import kubernetes.client as k8s

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), '..', '..'))
DEPLOY = os.path.join(ROOT, 'deploy', 'kubernetes')
CHART = os.path.join(DEPLOY, 'helm', 'weir')

errors = []


def err(where, msg):
    errors.append('%s: %s' % (where, msg))


# --- 1. strict reading into the API types ---------------------------------

MODELS = {
    ('v1', 'Namespace'): 'V1Namespace',
    ('v1', 'ConfigMap'): 'V1ConfigMap',
    ('apps/v1', 'DaemonSet'): 'V1DaemonSet',
}


def build(tname, data, path):
    """DATA as the API type TNAME, or None after reporting what is wrong."""
    if data is None:
        return None
    m = re.fullmatch(r'list\[(.+)\]', tname)
    if m:
        if not isinstance(data, list):
            return err(path, 'a list expected, not %r' % (data,))
        return [build(m.group(1), v, '%s[%d]' % (path, i)) for i, v in enumerate(data)]
    m = re.fullmatch(r'dict\(str, (.+)\)', tname)
    if m:
        if not isinstance(data, dict):
            return err(path, 'a map expected, not %r' % (data,))
        return {k: build(m.group(1), v, '%s.%s' % (path, k)) for k, v in data.items()}
    if tname == 'str' or tname == 'datetime':
        if not isinstance(data, str):
            err(path, 'a string expected, not %r' % (data,))
        return data
    if tname == 'int':
        if not isinstance(data, int) or isinstance(data, bool):
            err(path, 'an integer expected, not %r' % (data,))
        return data
    if tname == 'bool':
        if not isinstance(data, bool):
            err(path, 'true or false expected, not %r' % (data,))
        return data
    if tname == 'object':  # IntOrString, quantities
        if not isinstance(data, (str, int)):
            err(path, 'a string or an integer expected, not %r' % (data,))
        return data
    cls = getattr(k8s, tname)
    if not isinstance(data, dict):
        return err(path, '%s: a map expected, not %r' % (tname, data))
    by_key = {v: k for k, v in cls.attribute_map.items()}
    kwargs = {}
    for key, val in data.items():
        if key not in by_key:
            err('%s.%s' % (path, key), 'unknown field of %s (known: %s)' %
                (tname, ', '.join(sorted(by_key))))
            continue
        attr = by_key[key]
        kwargs[attr] = build(cls.openapi_types[attr], val, '%s.%s' % (path, key))
    try:
        return cls(**kwargs)
    except ValueError as e:  # a required field missing, a bad enum value
        err(path, '%s: %s' % (tname, e))
    return None


def read_objects(docs, where):
    objs = []
    for i, d in enumerate(docs):
        if d is None:
            continue
        key = (d.get('apiVersion'), d.get('kind'))
        if key not in MODELS:
            err('%s: document %d' % (where, i), 'unexpected object %s %s (nothing here '
                'needs the API server: no RBAC, no ServiceAccount)' % key)
            continue
        build(MODELS[key], d, '%s: %s/%s' % (where, key[1], d.get('metadata', {}).get('name')))
        objs.append(d)
    return objs


# --- 2. what weir needs ---------------------------------------------------

def help_options(weir, cmd):
    out = subprocess.run([weir, cmd, '--help'], capture_output=True, text=True)
    if out.returncode != 0:
        err('weir %s --help' % cmd, 'exit status %d: %s' % (out.returncode, out.stderr.strip()))
    return set(re.findall(r'--[a-z][a-z-]*', out.stdout))


def check_command(weir, argv, where):
    if argv[:1] != ['weir'] or len(argv) < 2:
        return err(where, 'the command is not weir SUBCOMMAND: %r' % (argv,))
    known = help_options(weir, argv[1])
    for a in argv[2:]:
        if a.startswith('--') and a not in known:
            err(where, '%s is no option of weir %s (its --help lists %s)' %
                (a, argv[1], ', '.join(sorted(known))))


def check_daemonset(ds, configmaps, weir, where):
    spec = ds['spec']
    tpl = spec['template']
    pod = tpl['spec']
    sel = spec['selector'].get('matchLabels', {})
    labels = tpl['metadata'].get('labels', {})
    for k, v in sel.items():
        if labels.get(k) != v:
            err(where, 'the selector %s=%s does not match the pod template' % (k, v))
    if not pod.get('hostPID'):
        err(where, 'hostPID must be true (the daemon opens /proc/PID/ns/net of pods)')
    if pod.get('automountServiceAccountToken') is not False:
        err(where, 'automountServiceAccountToken must be false: weir needs no API server')
    vols = {v['name']: v for v in pod.get('volumes', [])}
    used = set()
    ctrs = {c['name']: c for c in pod['containers']}
    for c in pod['containers']:
        cw = '%s: container %s' % (where, c['name'])
        check_command(weir, c.get('command', []), cw)
        for m in c.get('volumeMounts', []):
            used.add(m['name'])
            if m['name'] not in vols:
                err(cw, 'mounts %s, which is no volume of the pod' % m['name'])
    for name in vols:
        if name not in used:
            err(where, 'volume %s is mounted by no container' % name)
    d = ctrs.get('daemon')
    if not d:
        return err(where, 'no container named daemon')
    if not d.get('securityContext', {}).get('privileged'):
        err(where, 'the daemon must be privileged (BPF, cgroups, setns)')
    mounts = {m['mountPath']: m for m in d.get('volumeMounts', [])}
    for path, host in (('/sys/fs/bpf', 'bpffs'), ('/sys/fs/cgroup', 'cgroup'),
                       ('/run/weir', 'state'), ('/etc/weir/policies', 'policies')):
        if path not in mounts:
            err(where, 'the daemon does not mount %s (%s)' % (path, host))
    pm = mounts.get('/etc/weir/policies')
    if pm:
        cm = vols[pm['name']].get('configMap')
        if not cm or cm.get('name') not in configmaps:
            err(where, 'the policy directory is not the policies ConfigMap')
        else:
            check_policies(weir, configmaps[cm['name']], where)
    argv = d.get('command', [])
    for opt, want in (('--policy-dir', '/etc/weir/policies'), ('--socket', '/run/weir/weir.sock')):
        if opt not in argv or argv[argv.index(opt) + 1] != want:
            err(where, 'the daemon must run with %s %s' % (opt, want))
    for probe in ('readinessProbe', 'livenessProbe'):
        cmd = d.get(probe, {}).get('exec', {}).get('command', [])
        if cmd[:2] != ['weir', 'health']:
            err(where, '%s must run weir health, not %r' % (probe, cmd))
        else:
            check_command(weir, cmd, '%s: %s' % (where, probe))
    ann = tpl['metadata'].get('annotations', {})
    port = [p for p in d.get('ports', []) if p.get('name') == 'metrics']
    if ann.get('prometheus.io/scrape') != 'true' or not port:
        err(where, 'the metrics port and prometheus.io/scrape: "true" are missing')
    elif ann.get('prometheus.io/port') != str(port[0]['containerPort']):
        err(where, 'prometheus.io/port %r is not the metrics port %s' %
            (ann.get('prometheus.io/port'), port[0]['containerPort']))
    elif '--metrics' not in argv or argv[argv.index('--metrics') + 1] != ':%s' % port[0]['containerPort']:
        err(where, 'the daemon does not serve its metrics on port %s' % port[0]['containerPort'])
    n = ctrs.get('nri')
    if n:
        nm = {m['mountPath'] for m in n.get('volumeMounts', [])}
        argv = n.get('command', [])
        if '--nri-socket' not in argv or os.path.dirname(argv[argv.index('--nri-socket') + 1]) not in nm:
            err(where, 'the nri container does not mount the directory of its --nri-socket')
        if '/run/weir' not in nm:
            err(where, 'the nri container does not mount /run/weir (the daemon\'s socket)')


def check_policies(weir, cm, where):
    with tempfile.TemporaryDirectory() as tmp:
        for key, text in cm.get('data', {}).items():
            if not re.fullmatch(r'[A-Za-z0-9_-][A-Za-z0-9_.-]*\.yaml', key):
                err(where, 'ConfigMap key %r is no policy file name NAME.yaml' % key)
                continue
            path = os.path.join(tmp, key)
            with open(path, 'w') as f:
                f.write(text)
            out = subprocess.run([weir, 'policy', 'check', path], capture_output=True, text=True)
            if out.returncode != 0:
                err(where, 'policy %s: %s' % (key, out.stderr.strip()))


def check_all(objs, weir, where):
    cms = {o['metadata']['name']: o for o in objs if o['kind'] == 'ConfigMap'}
    dss = [o for o in objs if o['kind'] == 'DaemonSet']
    if len(dss) != 1:
        err(where, 'one DaemonSet expected, found %d' % len(dss))
    for ds in dss:
        check_daemonset(ds, cms, weir, '%s: DaemonSet/%s' % (where, ds['metadata']['name']))


# --- 3. the chart, rendered -----------------------------------------------

ACTION = re.compile(r'{{(-?)\s*(.*?)\s*(-?)}}', re.S)


class LiteralDumper(yaml.SafeDumper):
    pass


LiteralDumper.add_representer(
    str, lambda d, s: d.represent_scalar('tag:yaml.org,2002:str', s, style='|' if '\n' in s else None))


def lookup(ctx, ref, where):
    cur = ctx
    for part in ref.lstrip('.').split('.'):
        if not isinstance(cur, dict) or part not in cur:
            raise ValueError('%s: %s is not defined' % (where, ref))
        cur = cur[part]
    return cur


def evaluate(expr, ctx, where):
    stages = [s.strip() for s in expr.split('|')]
    first = stages[0].split()
    if first[0] in ('toYaml', 'quote') and len(first) == 2:
        stages = [first[1], first[0]] + stages[1:]
    if not re.fullmatch(r'(\.[A-Za-z_][A-Za-z0-9_]*)+', stages[0]):
        raise ValueError('%s: the renderer does not know %r' % (where, expr))
    val = lookup(ctx, stages[0], where)
    for f in stages[1:]:
        name, *args = f.split()
        if name == 'quote' and not args:
            val = '"%s"' % str(val).replace('\\', '\\\\').replace('"', '\\"')
        elif name == 'toYaml' and not args:
            val = yaml.dump(val, Dumper=LiteralDumper, default_flow_style=False,
                            sort_keys=True).rstrip('\n')
        elif name == 'nindent' and len(args) == 1:
            val = '\n' + '\n'.join(' ' * int(args[0]) + l if l else l
                                   for l in str(val).split('\n'))
        else:
            raise ValueError('%s: the renderer does not know the function %r' % (where, f))
    if isinstance(val, bool):
        return 'true' if val else 'false'
    return str(val)


def render(text, ctx, where):
    """TEXT as Helm renders it, for the actions the chart uses."""
    out, stack, pos = [], [], 0  # stack: [emitting?, taken?] per if
    emitting = lambda: all(s[0] for s in stack)
    for m in ACTION.finditer(text):
        lit = text[pos:m.start()]
        if m.group(1):
            lit = lit.rstrip(' \t\n')
        if emitting():
            out.append(lit)
        pos = m.end()
        if m.group(3):
            while pos < len(text) and text[pos] in ' \t\n':
                pos += 1
        act = m.group(2)
        if act.startswith('/*') and act.endswith('*/'):
            continue
        if act.startswith('if '):
            cond = bool(lookup(ctx, act[3:].strip(), where)) if emitting() else False
            stack.append([cond, cond])
        elif act == 'else':
            if not stack:
                raise ValueError('%s: else outside if' % where)
            stack[-1][0] = not stack[-1][1]
        elif act == 'end':
            if not stack:
                raise ValueError('%s: end outside if' % where)
            stack.pop()
        elif emitting():
            out.append(evaluate(act, ctx, where))
    if stack:
        raise ValueError('%s: an if without end' % where)
    out.append(text[pos:])
    return ''.join(out)


def render_chart(values):
    with open(os.path.join(CHART, 'Chart.yaml')) as f:
        chart = yaml.safe_load(f)
    for key in ('apiVersion', 'name', 'version'):
        if key not in chart:
            err('Chart.yaml', '%s is missing' % key)
    ctx = {'Values': values, 'Release': {'Name': 'weir', 'Namespace': 'weir-system'},
           'Chart': {'Name': chart.get('name'), 'AppVersion': chart.get('appVersion')}}
    docs = []
    tdir = os.path.join(CHART, 'templates')
    for name in sorted(os.listdir(tdir)):
        path = os.path.join(tdir, name)
        try:
            with open(path) as f:
                text = render(f.read(), ctx, path)
        except ValueError as e:
            err(path, str(e))
            continue
        if name.endswith('.yaml'):
            try:
                docs += [d for d in yaml.safe_load_all(text) if d is not None]
            except yaml.YAMLError as e:
                err(path, 'rendered, it is no YAML: %s' % e)
    return docs


def main():
    weir = sys.argv[1]
    plain_path = os.path.join(DEPLOY, 'weir.yaml')
    with open(plain_path) as f:
        plain = list(yaml.safe_load_all(f))
    objs = read_objects(plain, plain_path)
    check_all(objs, weir, plain_path)

    with open(os.path.join(CHART, 'values.yaml')) as f:
        values = yaml.safe_load(f)
    chart = render_chart(values)
    read_objects(chart, 'helm (default values)')
    check_all(chart, weir, 'helm (default values)')
    want = [o for o in objs if o['kind'] != 'Namespace']
    if chart != want:
        for a, b in zip(chart, want):
            if a != b:
                err('helm (default values)', '%s/%s differs from weir.yaml:\n%s\n%s' %
                    (a.get('kind'), a.get('metadata', {}).get('name'),
                     yaml.safe_dump(a), yaml.safe_dump(b)))
        if len(chart) != len(want):
            err('helm (default values)', '%d objects, weir.yaml has %d (less its Namespace)' %
                (len(chart), len(want)))

    values['nri']['enabled'] = False
    values['metrics']['port'] = 9999
    values['events'] = False
    off = render_chart(values)
    read_objects(off, 'helm (nri and events off, metrics 9999)')
    check_all(off, weir, 'helm (nri and events off, metrics 9999)')
    names = [c['name'] for o in off if o['kind'] == 'DaemonSet'
             for c in o['spec']['template']['spec']['containers']]
    if names != ['daemon']:
        err('helm (nri off)', 'containers %r, only the daemon expected' % names)

    for e in errors:
        print('weir: ' + e, file=sys.stderr)
    if errors:
        return 1
    print('ok: %s (%d objects) and the chart (%d objects, rendered twice) are valid' %
          (os.path.relpath(plain_path, ROOT), len(objs), len(chart)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
