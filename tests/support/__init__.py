"""Everything the tests share that is not a test: the harness that starts a gateway (harness.py, also used by bench/
and the soak), the fakes of the cluster (fake_kube.py: the narrow Kube interface in memory; fake_apiserver_http.py:
an apiserver behind the real Kube's connection pool; standin_apiserver.py: a scripted HTTP one), the fuzzer's
strategies and properties, the local stores and the integration tests' helpers. Test modules import from here, never
from each other."""
