"""The host's stand-in for workerd's `_cloudflare` package: the two modules the runtime SDK's
import patches (`_workers_sdk_entropy_import_context`, loaded by its `.pth` file) register
with, and `rules`, which applies workerd's top-level randomness rule around them.

Written for this test host from the documented behaviour; workerd's own copy is not
redistributed with the SDK, which only finds it inside the runtime.
"""
