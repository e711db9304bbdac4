"""Local fake servers of the remote image APIs, over real HTTP on loopback (pytest-httpserver).

One module per protocol (docs/protocols.md): :mod:`.sdnext`, :mod:`.replicate`,
:mod:`.runware`, :mod:`.gemini`, :mod:`.openai`, :mod:`.parasail`. Each fake subclasses
:class:`~.base.FakeServer`, which records every request and can script failures
(:meth:`~.base.FakeServer.fail_next`) and slow answers (:meth:`~.base.FakeServer.sleep_next`).
A prompt containing ``"forbidden"`` triggers the vendor's content-policy refusal.
"""
