"""The kernel side: what a notebook's kernel calls through ``runbooks.*`` (``record``, ``show``, ``guard_apply``,
``end_apply``), apart from the host-side runner (:mod:`runbooks.runner`), which never imports it.

It sits above the runner because an apply authorised in a kernel the runner did not start (JupyterLab) records
itself as a run through the runner's recording (:mod:`runbooks.kernel.interactive`). What both sides use lies
below both: secret resolution and redaction registration (:mod:`runbooks.secrets`), the channel's protocol and
kernel end (:mod:`runbooks.channel`), refusals (:mod:`runbooks.errors`), the actor (:mod:`runbooks.runner.identity`
is host metadata the kernel reads).
"""
