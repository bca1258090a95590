"""Headless command line: the same verbs as the window, over the same core objects.

    ghostdesk                      open the window
    ghostdesk chat [TEXT]          one-shot reply, or an interactive chat without TEXT
    ghostdesk conversations ...    list / show / export / rename / delete
    ghostdesk model info [PATH]    what a GGUF file is, read without loading it
    ghostdesk rate ID up|down|laugh|clear   rate a companion reply
    ghostdesk feedback ...         list / confirm / dismiss signals, export training data
    ghostdesk memory ...           list / search / edit / pin / forget / archive / import
    ghostdesk train [--status]     train a LoRA adapter on the feedback; --resume / --discard RUN
    ghostdesk adapters ...         list / activate / deactivate / rollback / delete / eval
    ghostdesk bench decode|gui|feedback|memory|learning|gpu
                                   benchmarks (figures go to docs/benchmarks.md)

One module per verb group, each with `add_verbs(verbs, common)`; ghostdesk.cli.output is how
every verb answers (--json or text). The CLI never imports Qt: the benchmarks that need a
window run in a child process.
"""

from ghostdesk.cli.parser import build_parser, dispatch

__all__ = ["build_parser", "dispatch"]
