"""The route DSL: YAML text -> validated model, with every problem located (file:line:col)."""

from controlplane.dsl.loader import load_files, load_texts
from controlplane.dsl.policy import AddressPolicy

__all__ = ["AddressPolicy", "load_files", "load_texts"]
