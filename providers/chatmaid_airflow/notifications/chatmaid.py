"""``ChatmaidNotifier``: a WhatsApp message from a task, DAG or deadline callback."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any, cast

import jinja2
from airflow.providers.common.compat.notifier import BaseNotifier
from airflow.sdk import Context

from chatmaid import AsyncChatmaidClient, ChatmaidClient
from chatmaid_airflow.hooks.chatmaid import ChatmaidHook


class ChatmaidNotifier(BaseNotifier):
    """Send a WhatsApp message when a callback fires.

    Use it as ``on_failure_callback``, ``on_success_callback``, ``on_retry_callback``
    (task or DAG level) or as a deadline alert's ``AsyncCallback``. Every recipient
    gets one message per callback: the idempotency key is derived from the task
    instance and try (or the DAG run, or the deadline) plus the recipient and the
    rendered text, so a callback that runs twice does not send twice.

    Example::

        PythonOperator(
            task_id="load",
            python_callable=load,
            on_failure_callback=ChatmaidNotifier(
                to=["+15557654321", "+15557654322"],
                content="{{ ti.task_id }} failed in {{ dag.dag_id }} ({{ run_id }})",
            ),
        )

    :param to: one recipient or several, E.164 (templated).
    :param content: text (templated).
    :param media_urls: public https URLs (templated).
    :param from_phone: a phone id, a sender's E.164 number, or ``None`` for the first
        connected phone (templated).
    :param idempotency_key: overrides the derived key (templated); with several
        recipients the recipient is appended.
    :param chatmaid_conn_id: the Chatmaid connection (templated).
    :param context: the callback context, for deadline alerts (Airflow passes it).
    """

    template_fields: Sequence[str] = (
        "to",
        "content",
        "media_urls",
        "from_phone",
        "idempotency_key",
        "chatmaid_conn_id",
    )

    def __init__(
        self,
        *,
        to: str | Sequence[str],
        content: str | None = None,
        media_urls: Sequence[str] | None = None,
        from_phone: str | None = None,
        idempotency_key: str | None = None,
        chatmaid_conn_id: str = ChatmaidHook.default_conn_name,
        context: Context | None = None,
    ) -> None:
        super().__init__(context=_with_task_names(context))
        self.to = to
        self.content = content
        self.media_urls = media_urls
        self.from_phone = from_phone
        self.idempotency_key = idempotency_key
        self.chatmaid_conn_id = chatmaid_conn_id

    def render_template_fields(
        self, context: Context, jinja_env: jinja2.Environment | None = None
    ) -> None:
        """Render each templated field; a field that fails does not stop the alert.

        A field that cannot be rendered is dropped, the text becomes a fallback naming
        the DAG, task, run and the render error, and a WARNING is logged: the alert
        still goes out. Only ``to`` and ``chatmaid_conn_id`` must render (without them
        nobody can be told).
        """
        env = jinja_env or self.get_template_env(dag=context.get("dag"))
        errors = []
        for name in self.template_fields:
            try:
                self._do_render_template_fields(self, (name,), context, env, set())
            except Exception as exc:
                if name in ("to", "chatmaid_conn_id"):
                    raise
                setattr(self, name, None)
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
        if errors:
            problem = "; ".join(errors)
            self.log.warning(
                "The Chatmaid notification's template failed to render (%s); "
                "sending a fallback text instead",
                problem,
            )
            self.content = _fallback_text(context, self.content, problem)

    @cached_property
    def hook(self) -> ChatmaidHook:
        """The hook on ``chatmaid_conn_id``."""
        return ChatmaidHook(self.chatmaid_conn_id)

    def notify(self, context: Context) -> None:
        """Send to every recipient (blocking)."""
        with self.hook.task_errors():
            client = self.hook.client
        for fields in self._sends(context, client=client):
            message = self.hook.send_message(**fields)
            self.log.info("Chatmaid notification %s to %s", message.id, message.to)

    async def async_notify(self, context: Context) -> None:
        """Send to every recipient on the running event loop (triggerer, deadlines)."""
        async with self.hook.async_client() as client:
            for fields in self._sends(context, client=client):
                message = await self.hook.asend_message(client, **fields)
                self.log.info("Chatmaid notification %s to %s", message.id, message.to)

    def _sends(
        self, context: Context, *, client: ChatmaidClient | AsyncChatmaidClient
    ) -> list[dict[str, Any]]:
        """One send per recipient, each keyed within ``client``'s environment and
        namespace."""
        recipients = [self.to] if isinstance(self.to, str) else list(self.to)
        identity = _callback_identity(context)
        sends = []
        for to in recipients:
            key = self.idempotency_key
            if key and len(recipients) > 1:
                key = client.idempotency_key(key, to, prefix="airflow-notify")
            elif key is None and identity is not None:
                parts = (*identity, to, self.content, *(self.media_urls or ()))
                key = client.idempotency_key(*parts, prefix="airflow-notify")
            sends.append(
                {
                    "to": to,
                    "content": self.content,
                    "media_urls": self.media_urls,
                    "from_phone": self.from_phone,
                    "idempotency_key": key,
                }
            )
        return sends


#: The DAG run's times in a deadline's context (ISO strings there).
_RUN_TIMES = (
    "logical_date",
    "queued_at",
    "start_date",
    "end_date",
    "data_interval_start",
    "data_interval_end",
    "run_after",
    "last_scheduling_decision",
)


def _with_task_names(context: Context | None) -> Context | None:
    """A deadline callback's context, with the names a task callback's context has.

    Airflow gives a deadline's ``AsyncCallback`` only ``dag_run`` (the run as the REST
    API shows it: its id is ``dag_run_id``, its times ISO strings) and ``deadline``
    (``id``, ``deadline_time``). This adds ``dag_run.run_id`` and ``run_id``, and turns
    the times into datetimes, so ``{{ dag_run.run_id }}``, ``{{ run_id }}`` and
    ``{{ dag_run.run_after | ds }}`` render as they do in a task callback.
    """
    dag_run = (context or {}).get("dag_run")
    if not isinstance(dag_run, Mapping):
        return context
    run = dict(dag_run)
    for name in _RUN_TIMES:
        if isinstance(run.get(name), str):
            run[name] = datetime.fromisoformat(run[name].replace("Z", "+00:00"))
    run.setdefault("run_id", run.get("dag_run_id"))
    return cast("Context", {**(context or {}), "dag_run": run, "run_id": run["run_id"]})


def _fallback_text(context: Context, content: str | None, problem: str) -> str:
    """The alert sent when the notifier's template failed: what fired, and why no text."""
    ti = context.get("ti")
    dag = context.get("dag")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None) or "unknown DAG"
    run_id = getattr(ti, "run_id", None) or context.get("run_id") or "unknown run"
    where = f"{dag_id}.{ti.task_id}" if ti is not None else dag_id
    text = f"Airflow alert from {where}, run {run_id}"
    if content:
        text += f": {content}"
    return f"{text} (the notification's template failed to render: {problem})"


def _callback_identity(context: Context) -> tuple[Any, ...] | None:
    """What identifies the callback's occasion, or ``None`` (then each send gets a random key)."""
    ti = context.get("ti")
    if ti is not None:
        return (ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number)
    deadline = context.get("deadline")
    if isinstance(deadline, dict) and deadline.get("id"):
        return ("deadline", deadline["id"])
    dag_run = context.get("dag_run")
    if dag_run is not None and getattr(dag_run, "run_id", None):
        return ("dag_run", dag_run.dag_id, dag_run.run_id)
    return None


send_chatmaid_notification = ChatmaidNotifier
