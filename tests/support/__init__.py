"""Test support beyond the harness: the fuzzer's strategies, properties and fake apiserver."""
