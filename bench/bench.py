#!/usr/bin/env python3
"""Helpers for bench/run.sh (Python 3 standard library only).

  bench.py gen DIR N
      DIR/migrations/V{n}__t{n}.sql for n = 1..N (a table and an index each) and
      DIR/all.sql, their concatenation in version order (kept outside
      migrations/, whose file names chatmigrate checks).

  bench.py genlint DIR N
      DIR/V1__lint_bench.sql: one migration of N statements (N/10 groups of
      ten: CREATE TABLE with a vector column, btree and HNSW indexes on it,
      ADD COLUMN with a constant default, a CHECK, COMMENT, INSERT, UPDATE,
      a view, and an ALTER of a table the file does not create; every tenth
      group also indexes that table without CONCURRENTLY, one finding).

  bench.py logslice LOG OFFSET PHASE XACTS >> counts.jsonl
      Reads the PostgreSQL server log from byte OFFSET on (the lines appended
      during one counted command) and prints one JSON line with what was sent.

  bench.py report WORK
      Prints the summary from WORK/info.tsv, WORK/times.tsv, WORK/counts.jsonl.

How round trips are counted (logslice): with log_statement = 'all' the server
writes one "LOG:  statement: <text>" entry per simple-query protocol message
(a Query 'Q' message), whatever the number of SQL statements in its text.
chatmigrate talks only the simple-query protocol (tokio-postgres
simple_query/batch_execute), and each such message is answered before the
next is sent, so one entry = one client/server round trip after the
connection is up. The connection itself (TCP, startup, SCRAM auth: about 3
more round trips) is not logged and is counted as "connections" (distinct
backend pids) instead. A message's text spans several log lines (the
continuation lines start with a tab); entries are recognised by the
"LOG:  statement:" marker on a line that does not start with a tab, never by
line count. Statements inside one message are counted by splitting the text
on top-level semicolons (quotes, dollar quotes and comments respected).
Extended-protocol traffic would log as "execute <name>:" entries; those are
counted too, separately, so a switch of protocol would show.
"""

import json
import re
import statistics
import sys
from pathlib import Path


def gen(root: str, n: int) -> None:
    base = Path(root)
    mig = base / "migrations"
    mig.mkdir(parents=True, exist_ok=True)
    parts = []
    for i in range(1, n + 1):
        sql = (
            f"CREATE TABLE t{i} (id bigint PRIMARY KEY, name text NOT NULL, "
            f"created_at timestamptz DEFAULT now());\n"
            f"CREATE INDEX t{i}_name ON t{i} (name);\n"
        )
        (mig / f"V{i}__t{i}.sql").write_text(sql)
        parts.append(sql)
    (base / "all.sql").write_text("".join(parts))


def genlint(root: str, n: int) -> None:
    out = Path(root)
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for g in range((n + 9) // 10):
        t = f"t{g}"
        group = [
            f"CREATE TABLE {t} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, userid text NOT NULL,"
            f" body text, created_at timestamptz NOT NULL DEFAULT now(), embedding vector(16))",
            f"CREATE INDEX {t}_userid ON {t} (userid)",
            f"ALTER TABLE {t} ADD COLUMN lang text NOT NULL DEFAULT 'ja'",
            f"ALTER TABLE {t} ADD CONSTRAINT {t}_body_len CHECK (char_length(body) < 10000)",
            f"COMMENT ON TABLE {t} IS 'lint benchmark table {g}'",
            f"INSERT INTO {t} (userid, body) VALUES ('u{g}', 'hello')",
            f"CREATE INDEX {t}_embedding ON {t} USING hnsw (embedding vector_l2_ops)",
            f"UPDATE {t} SET lang = 'en' WHERE userid = 'u{g}'",
            f"CREATE VIEW v{g} AS SELECT id, userid, body FROM {t}",
            f"CREATE INDEX legacy_c{g} ON legacy (c{g})" if g % 10 == 0 else f"ALTER TABLE legacy ADD COLUMN c{g} text",
        ]
        parts.extend(group)
    parts = parts[:n]
    (out / "V1__lint_bench.sql").write_text("".join(f"{p};\n" for p in parts))


# ---------------------------------------------------------------- SQL splitting

DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


def split_sql(text: str) -> list:
    """Top-level statements of a simple-query message (empty ones dropped)."""
    out, cur, i, n = [], [], 0, len(text)
    depth = 0  # block comment nesting
    while i < n:
        c = text[i]
        if depth:
            if text.startswith("*/", i):
                depth -= 1
                i += 2
            elif text.startswith("/*", i):
                depth += 1
                i += 2
            else:
                i += 1
            continue
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if text.startswith("/*", i):
            depth = 1
            i += 2
            continue
        if c == "'" or c == '"':
            backslash = c == "'" and i > 0 and text[i - 1] in "eE"
            j = i + 1
            while j < n:
                if backslash and text[j] == "\\":
                    j += 2
                    continue
                if text[j] == c:
                    if j + 1 < n and text[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            cur.append(text[i : j + 1])
            i = j + 1
            continue
        if c == "$":
            m = DOLLAR.match(text, i)
            if m and not (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")):
                tag = m.group(0)
                j = text.find(tag, m.end())
                j = n if j < 0 else j + len(tag)
                cur.append(text[i:j])
                i = j
                continue
        if c == ";":
            s = "".join(cur).strip()
            if s:
                out.append(s)
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    s = "".join(cur).strip()
    if s:
        out.append(s)
    return out


def shape(msg: list) -> str:
    """A short label for a message: its statements, literals blanked."""
    if len(msg) > 1 and msg[0].upper() == "BEGIN" and msg[-1].upper() == "COMMIT":
        # "BEGIN; SET LOCAL lock_timeout; CREATE TABLE; CREATE INDEX; INSERT; COMMIT"
        words = []
        for s in msg:
            w = s.split()
            if w[:2] == ["SET", "LOCAL"] and len(w) > 2:
                words.append(" ".join(w[:3]))
            else:
                words.append(" ".join(w[:2]) if w and w[0].upper() in ("CREATE", "ALTER", "DROP") else w[0])
        return "; ".join(words)
    first = " ".join(msg[0].split()) if msg else "(empty)"
    first = re.sub(r"'[^']*'", "'…'", first)
    first = re.sub(r"\b\d+\b", "N", first)
    if len(first) > 72:
        first = first[:71] + "…"
    return first + (f"  (+{len(msg) - 1} more statements)" if len(msg) > 1 else "")


# ---------------------------------------------------------------- log parsing

ENTRY = re.compile(r"\[(\d+)\][^:]*?\b(LOG|ERROR|FATAL|WARNING|NOTICE|STATEMENT|DETAIL|HINT|CONTEXT):  (.*)$")


def logslice(log: str, offset: int, phase: str, xacts: str) -> None:
    with open(log, "rb") as f:
        f.seek(offset)
        data = f.read().decode("utf-8", errors="replace")
    entries = []  # (pid, level, text)
    for line in data.split("\n"):
        if line.startswith("\t"):
            if entries:
                pid, level, text = entries[-1]
                entries[-1] = (pid, level, text + "\n" + line[1:])
            continue
        m = ENTRY.search(line)
        if m:
            entries.append((m.group(1), m.group(2), m.group(3)))
    messages, extended, errors, pids, shapes = [], 0, [], [], {}
    for pid, level, text in entries:
        if level == "LOG" and text.startswith("statement: "):
            stmts = split_sql(text[len("statement: ") :])
            messages.append(stmts)
            if pid not in pids:
                pids.append(pid)
            k = shape(stmts)
            shapes[k] = shapes.get(k, 0) + 1
        elif level == "LOG" and re.match(r"execute \S+: ", text):
            extended += 1
            if pid not in pids:
                pids.append(pid)
        elif level in ("ERROR", "FATAL") and pid in pids:
            errors.append(text.split("\n")[0])
    batches = [m for m in messages if len(m) > 1 and m[0].upper() == "BEGIN" and m[-1].upper() == "COMMIT"]
    rec = {
        "phase": phase,
        "connections": len(pids),
        "messages": len(messages),
        "extended_executes": extended,
        "statements": sum(len(m) for m in messages),
        "migration_batches": len(batches),
        "batch_statements": sum(len(m) for m in batches),
        "errors": errors,
        "shapes": sorted(shapes.items(), key=lambda kv: -kv[1]),
        "xacts": int(xacts) if xacts.lstrip("-").isdigit() else None,
    }
    print(json.dumps(rec))


# ---------------------------------------------------------------- report

def fmt_ms(v: float) -> str:
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def report(work: str) -> None:
    w = Path(work)
    info = []
    for line in (w / "info.tsv").read_text().splitlines():
        k, _, v = line.partition("\t")
        info.append((k, v))
    meta = dict(info)
    n = int(meta.get("migrations", "0"))
    times = {}  # label -> list of (rep, ms)
    order = []
    cpu = {}  # label -> list of user+sys ms (the command's own CPU, from bash's `time`)
    for line in (w / "times.tsv").read_text().splitlines():
        label, rep, t0, t1, *rest = line.split("\t")
        if label not in times:
            times[label] = []
            order.append(label)
        times[label].append((int(rep), (float(t1) - float(t0)) * 1000.0))
        if len(rest) == 2:
            cpu.setdefault(label, []).append((float(rest[0]) + float(rest[1])) * 1000.0)
    counts = []
    cpath = w / "counts.jsonl"
    if cpath.exists():
        counts = [json.loads(x) for x in cpath.read_text().splitlines() if x.strip()]

    out = []
    p = out.append
    p("chatmigrate benchmark")
    p("=" * 21)
    width = max(len(k) for k, _ in info)
    for k, v in info:
        p(f"  {k:<{width}}  {v}")
    p("")
    p("Wall time per command (ms; each sample a fresh process; timer: bash $EPOCHREALTIME)")
    p("  cpu: median user+sys time of the command itself (bash `time`, 1 ms resolution)")
    rows = [("measurement", "n", "min", "median", "max", "cpu")]
    for label in order:
        v = [ms for _, ms in times[label]]
        c = cpu.get(label)
        rows.append((label, str(len(v)), fmt_ms(min(v)), fmt_ms(statistics.median(v)), fmt_ms(max(v)),
                     fmt_ms(statistics.median(c)) if c else "-"))
    wl = max(len(r[0]) for r in rows)
    for i, r in enumerate(rows):
        p(f"  {r[0]:<{wl}}  {r[1]:>3}  {r[2]:>8}  {r[3]:>8}  {r[4]:>8}  {r[5]:>8}")
        if i == 0:
            p("  " + "-" * (wl + 45))

    # The everyday commands against `psql -c 'SELECT 1'` on the same server, in the same run:
    # per run, the ratio of the two medians (so a change of load between runs cancels out).
    sel = next((k for k in order if k.startswith("psql -c")), None)
    quick = [k for k in order if k.startswith("up, no-op") or k.startswith("status")]
    if sel and quick:
        p("")
        p("Everyday commands vs psql -c 'SELECT 1' (same server, same runs; target: at most 2x)")
        by_run = lambda label: {r: statistics.median([ms for rr, ms in times[label] if rr == r])
                                for r in sorted({rr for rr, _ in times[label]})}
        base = by_run(sel)
        rows = [("command", "median ms", "psql ms", "ratio", "per-run ratios")]
        for label in quick:
            mine = by_run(label)
            ratios = [mine[r] / base[r] for r in mine if r in base and base[r] > 0]
            rows.append((label, fmt_ms(statistics.median(mine.values())), fmt_ms(statistics.median(base.values())),
                         f"{statistics.median(ratios):.2f}x" if ratios else "-",
                         ", ".join(f"{x:.2f}" for x in ratios)))
        wl = max(len(r[0]) for r in rows)
        for i, r in enumerate(rows):
            p(f"  {r[0]:<{wl}}  {r[1]:>9}  {r[2]:>7}  {r[3]:>6}  {r[4]}")
            if i == 0:
                p("  " + "-" * (wl + 50))

    floor_label = next((k for k in order if k.startswith("floor")), None)
    up_label = next((k for k in order if k.startswith("up ") and "empty" in k), None)
    if floor_label and up_label:
        fl = dict(times[floor_label])
        up = dict(times[up_label])
        per_run = [up[r] / fl[r] for r in sorted(up) if r in fl]
        fmed = statistics.median(fl.values())
        umed = statistics.median(up.values())
        p("")
        p(f"Apply vs floor ({n} migrations)")
        p(f"  ratio of medians          {umed / fmed:.2f}x   ({fmt_ms(umed)} / {fmt_ms(fmed)} ms)")
        p(f"  ratio of bests (min/min)  {min(up.values()) / min(fl.values()):.2f}x")
        if per_run:
            p(
                f"  per-run ratios            best {min(per_run):.2f}x  median {statistics.median(per_run):.2f}x"
                f"  worst {max(per_run):.2f}x   [{', '.join(f'{x:.2f}' for x in per_run)}]"
            )
        if n:
            p(f"  per migration             up {umed / n * 1000:.0f} us, floor {fmed / n * 1000:.0f} us,"
              f" extra {(umed - fmed) / n * 1000:.0f} us")

    if counts:
        p("")
        p("What chatmigrate sends (server log, log_statement='all' on a dedicated database)")
        p("  one simple-query message = one 'LOG:  statement:' entry = one round trip;")
        p("  connection set-up (startup + SCRAM, ~3 round trips) is counted under conn.")
        rows = [("phase", "conn", "msgs", "stmts", "mig.batches", "stmts/batch", "xacts", "errors")]
        for c in counts:
            b = c["migration_batches"]
            rows.append((
                c["phase"], str(c["connections"]), str(c["messages"]), str(c["statements"]), str(b),
                f"{c['batch_statements'] / b:.1f}" if b else "-",
                "?" if c["xacts"] is None else str(c["xacts"]), str(len(c["errors"])),
            ))
        wl = max(len(r[0]) for r in rows)
        for i, r in enumerate(rows):
            p(f"  {r[0]:<{wl}}  {r[1]:>4}  {r[2]:>6}  {r[3]:>6}  {r[4]:>11}  {r[5]:>11}  {r[6]:>6}  {r[7]:>6}")
            if i == 0:
                p("  " + "-" * (wl + 66))
        p("  (xacts = xact_commit+xact_rollback delta of the database in pg_stat_database;")
        p("   each connection adds 1 for its backend start-up; autovacuum/autoanalyze on the new")
        p("   tables can add more: a cross-check only)")
        up = next((c for c in counts if "empty" in c["phase"]), None)
        if up and n:
            p("")
            p(f"  up from empty, per migration: {up['messages'] / n:.3f} messages (round trips),"
              f" {up['statements'] / n:.2f} statements;")
            p(f"    overhead outside the {up['migration_batches']} batches: "
              f"{up['messages'] - up['migration_batches']} messages")
        for c in counts:
            if c.get("extended_executes"):
                p(f"  note: {c['phase']}: {c['extended_executes']} extended-protocol executes")
        for c in counts:
            p("")
            p(f"  messages in '{c['phase']}':")
            for k, v in c["shapes"]:
                p(f"    {v:>5} x {k}")
            for e in c["errors"]:
                p(f"    error: {e}")
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)


def main(argv: list) -> int:
    if len(argv) >= 2 and argv[1] == "gen" and len(argv) == 4:
        gen(argv[2], int(argv[3]))
    elif len(argv) >= 2 and argv[1] == "genlint" and len(argv) == 4:
        genlint(argv[2], int(argv[3]))
    elif len(argv) >= 2 and argv[1] == "logslice" and len(argv) == 6:
        logslice(argv[2], int(argv[3]), argv[4], argv[5])
    elif len(argv) >= 2 and argv[1] == "report" and len(argv) == 3:
        report(argv[2])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
