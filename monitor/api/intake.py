"""Comments sent with a `communityId` (and without `doNotStore`) join the monitor: stored under a community of
platform `api` with the scores the request got, so `civmon score` never scores them again and the rollups,
trends and alerts cover them like any collected comment.

Perspective's requests name no author, so none is stored; the privacy settings apply as to collected
comments (`keep_bodies = false` drops the text once scored). A comment's thread is its `sessionId` (the
caller's conversation), else the UTC day it arrived on. Each request is a new comment: Perspective gives
comments no id, and `clientToken` is the caller's to reuse.
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, select

from monitor.config import PrivacySettings
from monitor.privacy import Pseudonymiser
from monitor.records import API_NAMES, CommentRecord, CommunityRef, ThreadRecord
from monitor.scoring.pending import write_scores
from monitor.scoring.results import Result
from monitor.store.db import transaction
from monitor.store.models import Comment, Thread
from monitor.store.upsert import Writer, community_id

PLATFORM = "api"
DAY_S = 86_400


@dataclass(frozen=True)
class Submission:
    community: str  # the caller's communityId, as sent: `community_name` makes it a stored name
    session_id: str | None
    text: str
    result: Result  # scored (not skipped): only scored comments are stored


class Intake:
    def __init__(self, engine: Engine, privacy: PrivacySettings, pseudonymiser: Pseudonymiser, version: str) -> None:
        self.engine = engine
        self.privacy = privacy
        self.pseudonymiser = pseudonymiser
        self.version = version

    def store(self, submission: Submission) -> None:
        """One transaction: the comment, its thread if new, and its scores."""
        now = int(time.time())
        ref = CommunityRef(PLATFORM, community_name(submission.community))
        comment_id = uuid.uuid4().hex
        thread = self._thread(submission.session_id, now)
        with transaction(self.engine) as session:
            community = community_id(session, ref)
            known = session.scalar(
                select(Thread.id).where(Thread.community_id == community, Thread.platform_id == thread.platform_id)
            )
            record = CommentRecord(comment_id, thread.platform_id, None, 0, None, submission.text, now)
            writer = Writer(session, self.privacy, self.pseudonymiser)
            # a thread already stored is named by a stub, which never overwrites its title or creation time
            writer.write(ref, [_stub(thread) if known else thread], [record])
            row = session.execute(
                select(Comment.id, Comment.body_hash).where(
                    Comment.platform_id == comment_id, Comment.community_id == community
                )
            ).one()
            write_scores(session, self.version, [row], [submission.result], self.privacy)

    def _thread(self, session_id: str | None, now: int) -> ThreadRecord:
        if session_id is not None:
            # keyed as authors are: a session id can name the user whose comments it gathers, and an unkeyed hash
            # of a guessed one (an e-mail address) would confirm it; titled by its hash, never by the id
            keyed = self.pseudonymiser.author("api:session", session_id.encode("utf-8", "replace").decode())
            digest = hashlib.blake2b(str(keyed).encode(), digest_size=15).hexdigest()
            return ThreadRecord(f"s{digest}", f"session {digest[:8]}", None, now)
        day = now - now % DAY_S
        label = time.strftime("%Y-%m-%d", time.gmtime(day))
        return ThreadRecord(f"d{label.replace('-', '')}", f"API comments of {label} (UTC)", None, day)


def community_name(community_id: str) -> str:
    """The stored name for a Perspective communityId, which may be any string (Coral sends `Coral:https://...`):
    itself when it is a valid lower-case name, else its letters as a lower-case slug with a short hash of the id.
    The store matches names regardless of case (as Reddit's), so `MY-FORUM` must not land in `my-forum`: a key
    allowed one would move the other's trends."""
    if API_NAMES.fullmatch(community_id) and community_id == community_id.lower():
        return community_id
    digest = hashlib.blake2b(community_id.encode("utf-8", "replace"), digest_size=4).hexdigest()
    slug = re.sub(r"[^a-z0-9._:-]+", "-", unicodedata.normalize("NFKD", community_id).lower()).strip("-._:")[:48]
    return f"{slug}-{digest}" if slug else f"c-{digest}"


def _stub(thread: ThreadRecord) -> ThreadRecord:
    return ThreadRecord(thread.platform_id, None, None, None)
