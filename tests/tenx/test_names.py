"""run --generate-name's names: the prefix, a dash, five characters of Kubernetes' alphabet, a valid label."""
import re

from tenx.names import ALPHABET, generate


def test_a_generated_name_is_the_prefix_and_a_random_suffix():
    names = {generate("hello") for _ in range(50)}
    assert len(names) > 45  # 27^5 suffixes: repeats are rare
    assert all(re.fullmatch(f"hello-[{ALPHABET}]{{5}}", name) for name in names)
    assert re.fullmatch(f"hello-[{ALPHABET}]{{5}}", generate("hello-"))  # an end dash is not doubled


def test_a_long_prefix_is_cut_to_keep_a_dns_label():
    name = generate("a" * 80)
    assert len(name) == 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    assert "--" not in generate("b" * 56 + "-x")
