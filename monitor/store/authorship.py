"""How a store's authors are keyed, and the one change it allows: user names into pseudonyms.

A store holds authors either as user names (pseudonymisation off) or as pseudonyms under one key, and every
writer must agree, or the store splits each author in two (and per-author measures with them), or keeps
names beside pseudonyms that were meant to replace them. The first writer records how it keys authors;
every later one is checked against that, and refused with what to do. User names can be turned into
pseudonyms afterwards (`civmon pseudonymise`); pseudonyms can never be turned back, nor into another
key's, since no key recovers the names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    ColumnElement,
    Engine,
    String,
    Table,
    Update,
    and_,
    delete,
    func,
    insert,
    select,
    union,
    update,
)
from sqlalchemy.orm import Session

from monitor.errors import CivmonError
from monitor.privacy import PSEUDONYM_CHARS, USER_NAMES, Pseudonymiser
from monitor.store.db import dialect_insert, lock_table, transaction
from monitor.store.models import Comment, Community, StoreFact, Thread
from monitor.store.staging import Stage

FACT = "author_keying"
# how migration 0007 found a store that already held authors (the key cannot be known from pseudonyms)
UNRECORDED_KEY, MIXED = "pseudonyms, key not recorded", "user names and pseudonyms"
PSEUDONYM = "^[0-9a-f]{16}$"
CONVERT = "`civmon pseudonymise`"
NAMES = Stage("author_names", Community.__table__, ["platform"], Column("name", String(64)))
RENAMES = Stage(
    "author_renames", Community.__table__, ["platform"], Column("name", String(64)), Column("pseudonym", String(64))
)
CHUNK = 50_000  # names hashed at a time: memory stays flat however many authors the store holds


def require_keying(session: Session, pseudonymiser: Pseudonymiser) -> None:
    """Refuse to write authors keyed otherwise than the store's; the first writer records its keying."""
    mine = pseudonymiser.keying
    stored = stored_keying(session, share=True)
    if stored is None:  # a writer racing this one may record its own first: the re-read below compares with it
        insert = dialect_insert(session, StoreFact.__table__).values(name=FACT, value=mine)
        session.execute(insert.on_conflict_do_nothing())
    elif _adopts(stored, mine):
        session.execute(update(StoreFact).where(StoreFact.name == FACT, StoreFact.value == stored).values(value=mine))
    if (stored := stored_keying(session, share=True)) != mine:
        raise _mismatch(stored or "", mine)


def check_keying(engine: Engine, pseudonymiser: Pseudonymiser) -> None:
    """Refuse now, as the first write would: a command that writes authors says so before it collects or scores."""
    if problem := keying_problem(engine, pseudonymiser):
        raise problem


def keying_problem(engine: Engine, pseudonymiser: Pseudonymiser) -> CivmonError | None:
    """Why this pseudonymiser may not write to the store (as `require_keying` would refuse), or None."""
    with Session(engine) as session:
        stored = stored_keying(session)
    mine = pseudonymiser.keying
    if stored is None or stored == mine or _adopts(stored, mine):
        return None
    return _mismatch(stored, mine)


def _adopts(stored: str, mine: str) -> bool:
    """Whether a writer keyed `mine` takes over a store keyed `stored`: a migrated store's unknown key."""
    return stored == UNRECORDED_KEY and mine != USER_NAMES


def stored_keying(session: Session, *, share: bool = False) -> str | None:
    """The store's keying; `share`: held until the transaction ends, so that a conversion waits for the writers
    before it and the writers after it read what it recorded (PostgreSQL's FOR SHARE; SQLite has one writer)."""
    query = select(StoreFact.value).where(StoreFact.name == FACT)
    return session.scalar(query.with_for_update(read=True) if share else query)


def _pseudonym_shaped(author: ColumnElement[str | None]) -> ColumnElement[bool]:
    """What Pseudonymiser.author makes; the length rules out a name ending in a line break ($ would match it)."""
    return and_(func.length(author) == PSEUDONYM_CHARS, author.regexp_match(PSEUDONYM))


def describe(keying: str | None) -> str:
    """How a store keeps its authors, in words for a status line or an export's data dictionary."""
    if keying is None:
        return "no authors stored yet"
    if keying == USER_NAMES:
        return "user names (collected with [privacy] pseudonymise_authors = false)"
    if keying == MIXED:
        return (
            f"user names and pseudonyms, collected before and after pseudonymisation was on ({CONVERT} converts them)"
        )
    if keying == UNRECORDED_KEY:
        return "keyed-hash pseudonyms, under a key this store did not record"
    return f"keyed-hash pseudonyms (HMAC-SHA256), key check {keying.removeprefix('hmac-sha256:')}"


def _mismatch(stored: str, mine: str) -> CivmonError:
    off = "[privacy] pseudonymise_authors = false"
    if stored == MIXED:
        return CivmonError(
            "this database holds both user names and pseudonyms as authors (collected before and after "
            "pseudonymisation was switched on): every author who wrote in both periods counts as two",
            f"with pseudonymisation on and its key, run {CONVERT} once to replace the user names with pseudonyms",
        )
    if stored == USER_NAMES:
        return CivmonError(
            f"this database holds authors as user names (stored with {off}): pseudonyms written beside them "
            "would leave those names in and count every author twice",
            f"run {CONVERT} once to replace the stored user names with pseudonyms under this key, or set {off} again",
        )
    if mine == USER_NAMES:
        return CivmonError(
            f"this database holds pseudonymised authors, and {off} would store user names beside them",
            "switch pseudonymisation back on with the key the pseudonyms were made with, or collect into "
            "another database",
        )
    return CivmonError(
        f"this database's author pseudonyms were made with another key (key check {stored}, this key's "
        f"{mine}): the same author would get two pseudonyms",
        "use the key they were made with ($CIVMON_PSEUDONYM_KEY or [privacy] key_file); a lost key cannot be "
        "recovered, so a new key needs a new database",
    )


@dataclass(frozen=True)
class Converted:
    authors: int  # distinct (platform, user name) pairs replaced by pseudonyms
    already: bool  # the store was keyed with this key already: nothing was changed


def pseudonymise_stored(engine: Engine, pseudonymiser: Pseudonymiser, emit: Callable[[str], None]) -> Converted:
    """Replace the stored user names with pseudonyms under the pseudonymiser's key, in one transaction (an
    interrupted run changes nothing, so it is simply run again)."""
    mine = pseudonymiser.keying
    if mine == USER_NAMES:
        raise CivmonError(
            "pseudonymisation is off ([privacy] pseudonymise_authors = false): there is no key to pseudonymise with",
            "set [privacy] pseudonymise_authors = true (and run `civmon init` for a key), then run this again",
        )
    with transaction(engine) as session:
        lock_table(session, StoreFact.__table__, "EXCLUSIVE")  # PostgreSQL's writers wait (FOR SHARE) until it commits
        stored = stored_keying(session)
        if stored == mine or (stored is not None and _adopts(stored, mine)):
            _record(session, mine)  # a migrated store of pseudonyms: this key is taken on trust, as a writer's is
            return Converted(0, already=True)
        if stored not in (None, USER_NAMES, MIXED):
            raise _mismatch(stored, mine)
        emit("finding the stored user names...")
        names = _stage_names(session, only_names=stored == MIXED)
        _stage_renames(session, pseudonymiser, names, emit)
        for table in (Thread, Comment):
            emit(f"rewriting {table.__tablename__}...")
            session.execute(_rename(table))
        _record(session, mine)
    return Converted(names, already=False)


def _record(session: Session, keying: str) -> None:
    session.execute(delete(StoreFact).where(StoreFact.name == FACT))
    session.add(StoreFact(name=FACT, value=keying))


def _stage_names(session: Session, *, only_names: bool) -> int:
    """Stage the distinct (platform, author) pairs to convert, in the database: all stored authors, or those not
    shaped like pseudonyms. Returns how many there are."""
    queries = []
    for table in (Thread, Comment):
        query = select(Community.platform, table.author).join(Community, Community.id == table.community_id)
        query = query.where(table.author.is_not(None))
        queries.append(query.where(~_pseudonym_shaped(table.author)) if only_names else query)
    staged = NAMES.fill(session, [])
    session.execute(insert(staged).from_select(["platform", "name"], union(*queries)))
    return session.scalar(select(func.count()).select_from(staged)) or 0


def _stage_renames(session: Session, pseudonymiser: Pseudonymiser, names: int, emit: Callable[[str], None]) -> None:
    """Each staged name with its pseudonym, hashed CHUNK at a time as the names stream from the database."""
    RENAMES.fill(session, [])
    done = 0
    stream = session.execute(select(NAMES.table), execution_options={"yield_per": CHUNK})
    for chunk in stream.partitions():
        RENAMES.append(session, [(platform, name, pseudonymiser.author(platform, name)) for platform, name in chunk])
        done += len(chunk)
        emit(f"pseudonymising authors: {done:,} of {names:,}")


def _rename(table: type[Thread] | type[Comment]) -> Update:
    """UPDATE ... FROM the staged renames: one pass over the table, the renames joined by hash or index."""
    renames: Table = RENAMES.table
    return (
        update(table)
        .where(
            table.community_id == Community.id,
            Community.platform == renames.c.platform,
            table.author == renames.c.name,
        )
        .values(author=renames.c.pseudonym)
        .execution_options(synchronize_session=False)
    )
