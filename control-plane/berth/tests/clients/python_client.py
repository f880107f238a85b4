"""The official Python client against Berth: pagination, list + watch resumed from a
resourceVersion, and 410 Gone for a resourceVersion older than the compacted history.

Usage: python_client.py KUBECONFIG
"""
import sys
import threading
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
ns = "pyclient"
v1.create_namespace({"metadata": {"name": ns}})

for i in range(25):
    v1.create_namespaced_config_map(ns, {"metadata": {"name": f"cm-{i:02}", "labels": {"batch": "a"}}, "data": {"i": str(i)}})

# Pagination: pages of 10 at one consistent resourceVersion.
names, token, pages = [], None, 0
while True:
    page = v1.list_namespaced_config_map(ns, limit=10, _continue=token, label_selector="batch=a")
    names += [cm.metadata.name for cm in page.items]
    pages += 1
    token = page.metadata._continue
    if not token:
        break
assert names == [f"cm-{i:02}" for i in range(25)], names
assert pages == 3, pages

# List, then watch from the list's resourceVersion: only what happens afterwards arrives.
listed = v1.list_namespaced_config_map(ns)
rv = listed.metadata.resource_version


def writer():
    time.sleep(0.5)
    v1.create_namespaced_config_map(ns, {"metadata": {"name": "late"}})
    v1.patch_namespaced_config_map("cm-00", ns, {"data": {"i": "changed"}})
    v1.delete_namespaced_config_map("cm-01", ns)


threading.Thread(target=writer).start()
seen = []
w = watch.Watch()
for event in w.stream(v1.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=10):
    seen.append((event["type"], event["object"].metadata.name))
    if len(seen) == 3:
        w.stop()
assert seen == [("ADDED", "late"), ("MODIFIED", "cm-00"), ("DELETED", "cm-01")], seen

# Once history is compacted, a watch from the old resourceVersion is answered with 410 Gone.
time.sleep(3.5)
v1.create_namespaced_config_map(ns, {"metadata": {"name": "after-compaction"}})
time.sleep(3.5)
try:
    for _ in watch.Watch().stream(v1.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=5):
        pass
    raise SystemExit("a watch from a compacted resourceVersion must fail")
except ApiException as e:
    assert e.status == 410, e
print("python client: ok")
