"""The engine's decisions: answer, clarify, escalate, silence under an agent, CSAT, ids that replay the same."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from inference.rules import classify
from streams.conversation import close_if_idle, handle_agent_message, handle_handoff, handle_inbound
from streams.knowledge_base import KnowledgeBase
from streams.policy import DEFAULT_POLICY_FILE, load_policy

POLICY = load_policy(DEFAULT_POLICY_FILE)
KB = KnowledgeBase.load()
T0 = 1_764_064_800.0


def msg(i: int, text: str, channel: str = "WHATSAPP", conversation: str = "conv-1") -> dict:
    return {"message_id": f"msg-{conversation}-{i}", "conversation_id": conversation, "channel": channel,
            "source": "whatsapp", "channel_message_id": f"wamid.{i}", "sender_id": "34600111222",
            "recipient_id": "1065", "customer_id": None, "sent_at": datetime.fromtimestamp(T0 + i, timezone.utc),
            "received_at": datetime.fromtimestamp(T0 + i, timezone.utc), "text": text, "language": None,
            "attachments": [], "reply_to_channel_message_id": None, "subject": None, "metadata": {}}


def run(session, i, text, **kw):
    return handle_inbound(session, msg(i, text, **kw), classify(text), POLICY, KB, T0 + i)


def by_topic(outcome, topic):
    return [e.record for e in outcome.effects if e.topic == topic]


def test_first_reply_discloses_the_assistant_and_answers_with_entities() -> None:
    out = run(None, 1, "Hola, ¿dónde está mi pedido 4711-ES?")
    [reply] = by_topic(out, "conversation.outbound")
    assert out.route == "answer" and reply["in_reply_to"] == "msg-conv-1-1"
    assert reply["text"].startswith("Hola, soy el asistente automático") and "4711-ES" in reply["text"]
    assert [t["direction"] for t in by_topic(out, "conversation.log")] == ["INBOUND", "OUTBOUND"]
    assert by_topic(out, "conversation.session")[0]["type"] == "OPENED"
    second = run(out.session, 2, "gracias")
    assert "asistente automático" not in by_topic(second, "conversation.outbound")[0]["text"]


def test_not_understood_twice_escalates_with_exactly_one_handoff_and_case() -> None:
    first = run(None, 1, "asdf qwer")
    assert first.route == "clarify" and first.session.not_understood_in_a_row == 1
    second = run(first.session, 2, "zzz yyy")
    assert second.route == "handoff" and second.reason == "not_understood"
    [handoff] = by_topic(second, "conversation.handoff")
    [case] = by_topic(second, "crm.case-events")
    assert handoff["state"] == "REQUESTED" and handoff["case_id"] == case["case_id"] and case["type"] == "CREATED"
    assert len(by_topic(second, "conversation.outbound")) == 1  # the handoff notice is the reply
    assert second.session.owner == "agent"


@pytest.mark.parametrize(("text", "reason", "queue", "priority"), [
    ("quiero hablar con una persona", "human_request", "es-general", "MEDIUM"),
    ("esto es una vergüenza, pésimo servicio, quiero poner una queja", "complaint", "es-priority", "HIGH"),
    ("please delete my personal data under GDPR", "privacy_request", "privacy", "HIGH"),
])
def test_escalation_reasons_pick_queue_and_priority(text: str, reason: str, queue: str, priority: str) -> None:
    out = run(None, 1, text)
    assert out.route == "handoff" and out.reason == reason
    [case] = by_topic(out, "crm.case-events")
    assert (case["queue"], case["priority"], case["status"]) == (queue, priority, "ESCALATED")


def test_priority_customer_goes_to_a_person() -> None:
    policy = load_policy(DEFAULT_POLICY_FILE)
    vip = policy.__class__(**{**policy.__dict__, "priority_customers": frozenset({"cust-vip"})})
    message = {**msg(1, "hola"), "customer_id": "cust-vip"}
    out = handle_inbound(None, message, classify("hola"), vip, KB, T0)
    assert out.route == "handoff" and out.reason == "priority_customer"


def test_agent_owned_conversation_is_silent_but_logged_and_case_updated() -> None:
    escalated = run(None, 1, "quiero hablar con un agente").session
    out = run(escalated, 2, "¿hola? ¿hay alguien?")
    assert out.route == "silent" and by_topic(out, "conversation.outbound") == []
    assert by_topic(out, "conversation.log")[0]["route"] == "silent"
    assert by_topic(out, "crm.case-events")[0]["type"] == "UPDATED"
    agent = handle_agent_message(out.session, {"message_id": "agent-1", "conversation_id": "conv-1", "channel": "WHATSAPP",
                                               "recipient_id": "34600111222", "author": "AGENT", "agent_id": "ag-7",
                                               "created_at": datetime.fromtimestamp(T0 + 3, timezone.utc),
                                               "text": "Hola, soy Marta"}, T0 + 3)
    assert by_topic(agent, "conversation.log")[0]["author"] == "AGENT"


def test_handoff_lifecycle_accept_release_complete() -> None:
    session = run(None, 1, "quiero hablar con un agente").session
    case_id = session.case_id
    event = {"event_id": "h-2", "conversation_id": "conv-1", "case_id": case_id, "state": "ACCEPTED", "agent_id": "ag-7",
             "queue": "es-general", "channel": "WHATSAPP"}
    accepted = handle_handoff(session, event, T0 + 2)
    assert accepted.session.owner == "agent" and by_topic(accepted, "crm.case-events")[0]["status"] == "WORKING"
    released = handle_handoff(accepted.session, {**event, "event_id": "h-3", "state": "RELEASED"}, T0 + 3)
    assert released.session.owner == "bot"
    assert run(released.session, 4, "¿dónde está mi pedido 5521?").route == "answer"
    completed = handle_handoff(released.session, {**event, "event_id": "h-5", "state": "COMPLETED"}, T0 + 5)
    [closed] = by_topic(completed, "crm.case-events")
    assert closed["type"] == "CLOSED" and closed["case_id"] == case_id and completed.session.case_id is None
    assert handle_handoff(None, event, T0).session is None


def test_inactivity_closes_and_asks_for_csat_then_records_it() -> None:
    session = run(None, 1, "hola").session
    assert close_if_idle(session, POLICY, KB, T0 + 60).route == "none"
    closed = close_if_idle(session, POLICY, KB, T0 + 1 + POLICY.inactivity_timeout_s)
    kinds = [e["type"] for e in by_topic(closed, "conversation.session")]
    assert kinds == ["CLOSED", "CSAT_REQUESTED"] and by_topic(closed, "conversation.outbound")[0]["quick_replies"] == ["1", "2", "3", "4", "5"]
    answer = run(closed.session, 5000, "5")
    assert answer.route == "csat" and [e["type"] for e in by_topic(answer, "conversation.session")] == ["RESUMED", "CSAT_RECEIVED"]
    assert by_topic(answer, "conversation.session")[1]["csat_score"] == 5


def test_same_input_gives_the_same_effect_ids() -> None:
    a, b = run(None, 1, "quiero cancelar mi pedido 4711"), run(None, 1, "quiero cancelar mi pedido 4711")
    ids = lambda o: [e.record.get("message_id") or e.record.get("event_id") or e.record.get("turn_id") for e in o.effects]
    assert ids(a) == ids(b)


def test_english_conversation_and_unknown_language_default() -> None:
    out = run(None, 1, "Hi, I want to cancel my order please", channel="SMS")
    assert out.session.language == "en" and "cancel" in by_topic(out, "conversation.outbound")[0]["text"].lower()


def test_verified_customer_switching_channel_continues_session_and_case() -> None:
    from streams.conversation import identity_of, identity_summary

    whatsapp = run(None, 1, "quiero hablar con una persona")
    case_id = whatsapp.session.case_id
    summary = identity_summary(whatsapp.session, T0 + 1)
    sms = {**msg(2, "sigo esperando", channel="SMS", conversation="conv-sms"), "source": "twilio", "sender_id": "+34 600 111 222"}
    assert identity_of(sms) == identity_of(msg(1, "x")) == "phone:34600111222"
    out = handle_inbound(None, sms, classify(sms["text"]), POLICY, KB, T0 + 60, summary)
    assert by_topic(out, "conversation.session")[0]["type"] == "CHANNEL_SWITCHED"
    assert out.session.case_id == case_id and out.route == "silent"  # the human still has it
    late = handle_inbound(None, sms, classify(sms["text"]), POLICY, KB, T0 + 1 + POLICY.channel_switch_window_s + 1, summary)
    assert by_topic(late, "conversation.session")[0]["type"] == "OPENED" and late.session.case_id is None
    webchat = {**msg(3, "hola", channel="WEBCHAT"), "source": "webchat", "sender_id": "visitor-1"}
    assert identity_of(webchat) is None


def test_effects_are_remembered_until_their_input_is_committed_then_only_recognised() -> None:
    from streams.conversation import REMEMBERED_MESSAGES, SEEN_MESSAGES, Session, forget_committed, remember, \
        remembered_effects, was_seen

    session = Session(conversation_id="c", channel="SMS", source="twilio", sender_id="s")
    ids = [f"msg-{i}" for i in range(SEEN_MESSAGES + 5)]
    for offset, message_id in enumerate(ids):
        remember(session, message_id, [["conversation.outbound", "c", "eA=="]], ("conversation.inbound", 2, offset))
    assert list(session.handled) == ids[-REMEMBERED_MESSAGES:]  # a stalled commit: the newest are kept, bounded
    assert remembered_effects(session, ids[-1]) == [("conversation.outbound", b"c", b"x")]
    commits = {("conversation.inbound", 2): len(ids) - 2}  # the group will read on from the second-to-last
    forget_committed(session, lambda topic, partition: commits.get((topic, partition)))
    assert list(session.handled) == ids[-2:]  # the uncommitted ones still replay byte for byte
    forget_committed(session, lambda topic, partition: None)  # nothing committed on a partition: nothing forgotten
    assert list(session.handled) == ids[-2:]
    assert all(was_seen(session, m) for m in ids[-SEEN_MESSAGES:])  # older ones still recognised, then skipped
    assert not was_seen(session, ids[0]) and not was_seen(session, "msg-new")
    assert len(session.seen) == SEEN_MESSAGES


def test_a_session_survives_its_encoding_and_ignores_unknown_fields() -> None:
    from streams.conversation import decode_session, encode_session

    session = run(None, 1, "Hola, ¿dónde está mi pedido 4711-ES?").session
    again = decode_session(encode_session(session))
    assert again == session
    import orjson
    newer = orjson.dumps({**orjson.loads(encode_session(session)), "field_of_a_later_version": 1})
    assert decode_session(newer) == session


def test_session_deadlines_close_idle_sessions_and_forget_old_ones() -> None:
    from streams.conversation import session_deadline, timer_action

    retention = 7 * 86_400
    session = run(None, 1, "hola").session
    assert session_deadline(session, POLICY, retention) == session.last_activity + POLICY.inactivity_timeout_s
    assert timer_action(session, POLICY, retention, session.last_activity + 60) == "wait"
    assert timer_action(session, POLICY, retention, session.last_activity + POLICY.inactivity_timeout_s) == "close"
    closed = close_if_idle(session, POLICY, KB, session.last_activity + POLICY.inactivity_timeout_s).session
    assert session_deadline(closed, POLICY, retention) == closed.closed_at + retention
    assert timer_action(closed, POLICY, retention, closed.closed_at + retention - 1) == "wait"
    assert timer_action(closed, POLICY, retention, closed.closed_at + retention) == "purge"
    handed = run(None, 2, "quiero hablar con una persona").session  # a person has it: never closed as idle
    assert timer_action(handed, POLICY, retention, handed.last_activity + POLICY.inactivity_timeout_s) == "wait"
    assert timer_action(handed, POLICY, retention, handed.last_activity + retention) == "purge"


def test_every_reply_is_delivered_on_its_channel_within_the_window() -> None:
    out = run(None, 1, "Hola, ¿dónde está mi pedido 4711-ES?")
    [reply] = by_topic(out, "conversation.outbound")
    [payload] = by_topic(out, "channel.whatsapp.outbound")
    assert payload["in_reply_to"] == "msg-conv-1-1" and payload["message_id"] == reply["message_id"]
    assert payload["type"] == "text" and payload["text"] == reply["text"] and payload["to"] == "34600111222"
    assert out.session.customer_last_at == T0 + 1
    # the effects list is what a replay re-emits: delivery sits with the reply, before the log turn
    assert [e.topic for e in out.effects][:3] == ["conversation.session", "conversation.log", "conversation.outbound"]


def test_a_reply_outside_the_whatsapp_window_goes_out_as_a_template() -> None:
    first = run(None, 1, "Hola")
    first.session.customer_last_at = T0 - 2 * 86_400  # as if the customer last wrote two days ago
    closed = close_if_idle(first.session, POLICY, KB, T0 + 10 * 86_400)
    [csat] = [e.record for e in closed.effects if e.topic == "channel.whatsapp.outbound"]
    assert csat["type"] == "template" and csat["free_text_blocked"]


def test_agent_messages_are_delivered_with_or_without_a_session() -> None:
    handed = run(None, 1, "quiero hablar con una persona")
    agent = {"message_id": "agent-1", "in_reply_to": None, "conversation_id": "conv-1", "channel": "WHATSAPP",
             "recipient_id": "34600111222", "author": "AGENT", "agent_id": "a-7",
             "created_at": datetime.fromtimestamp(T0 + 5, timezone.utc), "text": "Hola, soy Marta", "language": "es",
             "quick_replies": [], "template": None, "metadata": {"source": "whatsapp"}}
    out = handle_agent_message(handed.session, agent, T0 + 5)
    [payload] = by_topic(out, "channel.whatsapp.outbound")
    assert payload["text"] == "Hola, soy Marta" and out.route == "agent"
    alone = handle_agent_message(None, agent, T0 + 5)
    assert alone.session is None and [e.topic for e in alone.effects] == ["channel.whatsapp.outbound"]


def test_identity_summaries_are_written_when_they_change_or_once_a_minute() -> None:
    from streams.conversation import identity_needs_update, identity_summary

    out = run(None, 1, "Hola")
    summary = identity_summary(out.session, T0 + 1)
    assert identity_needs_update(None, summary)
    later = {**summary, "at": T0 + 30, "recent_turns": summary["recent_turns"] + ["customer: más"]}
    assert not identity_needs_update(summary, later)  # only the turns and the time moved, within a minute
    assert identity_needs_update(summary, {**later, "at": T0 + 62})
    assert identity_needs_update(summary, {**later, "owner": "agent"})  # a handoff is news right away
