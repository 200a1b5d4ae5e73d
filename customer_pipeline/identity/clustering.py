"""Clusters of records that are one person: connected components over accepted links and review decisions."""

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

LINK_COLUMNS = ["record_id_l", "record_id_r", "match_weight", "match_probability", "link_type", "comparison_detail"]
REVIEW_COLUMNS = [*LINK_COLUMNS, "reason", "cluster_key_l", "cluster_key_r", "same_cluster"]

# Keys of `comparison_detail` that compare names. A scored link whose every other comparison
# weighs 0 (unknown on one side) rests on the name alone: see `cluster` for how such links are used.
NAME_COMPARISONS = ("first_name", "last_name")


def empty_links() -> pd.DataFrame:
    """A links frame (docs/staging-contract.md) with no rows."""
    return pd.DataFrame(
        {
            "record_id_l": pd.Series(dtype=object),
            "record_id_r": pd.Series(dtype=object),
            "match_weight": pd.Series(dtype=float),
            "match_probability": pd.Series(dtype=float),
            "link_type": pd.Series(dtype=object),
            "comparison_detail": pd.Series(dtype=object),
        }
    )


def arrow_table(frame: pd.DataFrame) -> pa.Table:
    """The frame as an Arrow table, text as Arrow strings: DuckDB scans that without the GIL."""
    out = {}
    for col in frame.columns:
        s = frame[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            s = s.astype("string[pyarrow]")
        out[col] = pa.array(s, from_pandas=True)
    return pa.table(out) if out else pa.table({})


def fetch_pandas(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> pd.DataFrame:
    """Run a query and hand the result over through Arrow (much faster than `.df()` for text)."""
    rel = con.sql(sql, params=params or None)
    to_arrow = getattr(rel, "to_arrow_table", None) or rel.arrow
    return to_arrow().to_pandas()


def connected_components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Root (the smallest member code) of every node 0..n-1, for edges left[i]-right[i].

    Vectorised hook-and-shortcut: every round hooks the larger of two roots under the smaller
    and then flattens the trees, so a component's root is always its smallest code.
    """
    parent = np.arange(n, dtype=np.int64)
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    while left.size:
        pl, pr = parent[left], parent[right]
        differ = pl != pr
        if not differ.any():
            break
        left, right, pl, pr = left[differ], right[differ], pl[differ], pr[differ]
        np.minimum.at(parent, np.maximum(pl, pr), np.minimum(pl, pr))
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    return parent


def typed_frame(frame: pd.DataFrame | None, text: list[str], times: list[str]) -> pd.DataFrame:
    """Exactly these columns (missing ones empty; None gives no rows): text as Arrow strings, times as naive UTC."""
    cols = [*text, *times]
    out = pd.DataFrame(columns=cols) if frame is None else frame.reindex(columns=cols)
    out = out.reset_index(drop=True)
    for col in text:
        out[col] = out[col].astype("string[pyarrow]")
    for col in times:
        out[col] = pd.to_datetime(out[col], utc=True).dt.tz_localize(None)
    return out


def _decisions_frame(decisions: pd.DataFrame | None) -> pd.DataFrame:
    """Decisions with the optional `decided_at` and their row order, for picking the latest per pair."""
    d = typed_frame(decisions, ["record_id_l", "record_id_r", "decision"], ["decided_at"])
    d["seq"] = np.arange(len(d), dtype=np.int64)
    return d


_PREPARE = """
CREATE TEMP TABLE ids AS
SELECT record_id, (row_number() OVER (ORDER BY record_id) - 1)::BIGINT AS code
FROM (SELECT DISTINCT record_id FROM ids_in WHERE record_id IS NOT NULL);

-- The latest decision per pair (by decided_at, then by row order).
CREATE TEMP TABLE decided AS
SELECT least(record_id_l, record_id_r) AS l, greatest(record_id_l, record_id_r) AS r, decision
FROM decisions_in
QUALIFY row_number() OVER (
    PARTITION BY least(record_id_l, record_id_r), greatest(record_id_l, record_id_r)
    ORDER BY decided_at DESC NULLS LAST, seq DESC) = 1;

CREATE TEMP TABLE pairs AS
SELECT least(k.record_id_l, k.record_id_r) AS record_id_l,
       greatest(k.record_id_l, k.record_id_r) AS record_id_r,
       k.match_weight, k.match_probability, k.link_type, k.comparison_detail,
       starts_with(coalesce(k.link_type, ''), 'deterministic') OR k.match_weight = 'inf'::DOUBLE AS det,
       d.decision,
       k.match_weight < 'inf'::DOUBLE AND NOT starts_with(coalesce(k.link_type, ''), 'deterministic')
       AND coalesce(len(map_keys(detail.m)) > 0
           AND len(list_filter(map_entries(detail.m),
                               lambda e: e.key NOT IN {names} AND coalesce(e.value, 0) <> 0)) = 0, false) AS name_only,
       -- first names against each other and nothing personal (birth date, email) for it: what one home's
       -- members share (surname, address, the family phone) is all that holds the pair together
       k.match_weight < 'inf'::DOUBLE AND NOT starts_with(coalesce(k.link_type, ''), 'deterministic')
       AND coalesce(detail.m['first_name'] < -1 AND coalesce(detail.m['birth_date'], 0) <= 0
                    AND coalesce(detail.m['email'], 0) <= 0, false) AS household_only
FROM links_in AS k
CROSS JOIN LATERAL (SELECT TRY_CAST(TRY_CAST(k.comparison_detail AS JSON) AS MAP(VARCHAR, DOUBLE)) AS m) AS detail
LEFT JOIN decided AS d
  ON d.l = least(k.record_id_l, k.record_id_r) AND d.r = greatest(k.record_id_l, k.record_id_r)
WHERE k.record_id_l <> k.record_id_r;
"""

_PREPARE = _PREPARE.replace("{names}", "(" + ", ".join(f"'{k}'" for k in NAME_COMPARISONS) + ")")

_EDGES = """
SELECT il.code AS l, ir.code AS r, CASE WHEN p.det THEN 1.0 ELSE p.match_probability END AS p, p.det AS hard
FROM pairs AS p
JOIN ids AS il ON il.record_id = p.record_id_l
JOIN ids AS ir ON ir.record_id = p.record_id_r
WHERE (p.det OR (p.match_weight >= $accept AND NOT p.name_only AND NOT p.household_only))
  AND p.decision IS DISTINCT FROM 'no_match'
UNION ALL
SELECT il.code, ir.code, 1.0, true
FROM decided AS d
JOIN ids AS il ON il.record_id = d.l
JOIN ids AS ir ON ir.record_id = d.r
WHERE d.decision = 'match'
-- a fixed order (codes follow record_id): split_conflicts breaks ties between equal probabilities by an edge's
-- position, so without it the result depended on the join's row order, and clustering a subset of components
-- (an incremental run, a group on Spark) could differ from clustering all of them
ORDER BY l, r, hard DESC, p DESC
"""

# Undecided links that rest on the name alone: candidates of the second clustering phase.
_NAME_ONLY_EDGES = """
SELECT il.code AS l, ir.code AS r, p.match_probability AS p, p.match_weight AS w
FROM pairs AS p
JOIN ids AS il ON il.record_id = p.record_id_l
JOIN ids AS ir ON ir.record_id = p.record_id_r
WHERE p.name_only AND p.decision IS NULL AND p.match_weight >= $low
ORDER BY l, r, p DESC
"""

_REVIEW = """
WITH queue AS (
    SELECT record_id_l, record_id_r, match_weight, match_probability, link_type, comparison_detail,
           CASE WHEN match_weight < $accept THEN 'uncertain' WHEN household_only THEN 'household'
                ELSE 'name_only' END AS reason
    FROM pairs
    WHERE NOT det AND decision IS NULL AND match_weight >= $low
      AND (match_weight < $accept OR name_only OR household_only)
    QUALIFY row_number() OVER (PARTITION BY record_id_l, record_id_r ORDER BY match_weight DESC) = 1
    UNION ALL
    SELECT d.l, d.r, p.match_weight, p.match_probability, p.link_type, p.comparison_detail,
           'no_match_conflict'
    FROM decided AS d
    LEFT JOIN pairs AS p ON p.record_id_l = d.l AND p.record_id_r = d.r
    WHERE d.decision = 'no_match'
    QUALIFY row_number() OVER (PARTITION BY d.l, d.r ORDER BY p.match_weight DESC NULLS LAST) = 1
)
SELECT q.*, cl.cluster_key AS cluster_key_l, cr.cluster_key AS cluster_key_r,
       cl.cluster_key = cr.cluster_key AS same_cluster
FROM queue AS q
JOIN clusters AS cl ON cl.record_id = q.record_id_l
JOIN clusters AS cr ON cr.record_id = q.record_id_r
WHERE q.reason = 'uncertain' OR (q.reason = 'name_only') <> (cl.cluster_key = cr.cluster_key)
   OR (q.reason = 'household' AND cl.cluster_key <> cr.cluster_key)
ORDER BY q.reason DESC, q.match_weight DESC, q.record_id_l, q.record_id_r
"""


def _name_only_edges(root: np.ndarray, bare: np.ndarray, contact: np.ndarray, cand: dict,
                     name_only_accept: float) -> np.ndarray:
    """Which name-only candidate links become edges (a boolean mask over `cand`).

    `root` is the clustering on the other evidence. A link whose only agreement is the name says
    "same name", and a name can belong to several people, so such a link joins two clusters only
    where nothing else claims the record: a bare name never bridges two namesakes.
    A cluster is *thin* when all its records carry nothing but a name (`bare`), or when it is a
    single record with a name and an email or phone that no other record shares, and no birth
    date nor address (`contact`: what a call-center agent types). Other clusters are *full*.
    1. Two full clusters: a name-only link at >= `name_only_accept` joins them when each is the
       other's only such partner.
    2. Two thin clusters join at >= `name_only_accept`.
    3. A group of thin clusters (after 2) joins the one full cluster it has name-only links to
       (any candidate, i.e. from the review floor up); with two or more it stays apart.
    """
    n = len(root)
    l = np.asarray(cand["l"], dtype=np.int64)
    r = np.asarray(cand["r"], dtype=np.int64)
    w = np.asarray(cand["w"], dtype=float)
    keep = np.zeros(len(l), dtype=bool)
    if not len(l):
        return keep
    all_bare = np.ones(n, dtype=bool)
    np.logical_and.at(all_bare, root, bare)
    size = np.bincount(root, minlength=n)
    thin_root = all_bare | ((size == 1) & contact)
    a, b = root[l], root[r]
    ta, tb = thin_root[a], thin_root[b]
    apart = a != b
    # 1. Mutually unique partners among full clusters.
    strong = apart & ~ta & ~tb & (w >= name_only_accept)
    if strong.any():
        sides = pd.DataFrame({"c": np.concatenate([a[strong], b[strong]]), "o": np.concatenate([b[strong], a[strong]])})
        partners = sides.drop_duplicates().groupby("c").size()
        unique = partners.index[partners.to_numpy() == 1].to_numpy()
        keep |= strong & np.isin(a, unique) & np.isin(b, unique)
    # 2. Thin with thin.
    keep |= apart & ta & tb & (w >= name_only_accept)
    group = connected_components(n, np.concatenate([root, l[keep]]), np.concatenate([np.arange(n), r[keep]]))
    # 3. A group of thin clusters to its only full cluster.
    mixed = apart & (ta != tb)
    if mixed.any():
        g = np.where(ta, group[l], group[r])[mixed]
        anchor = np.where(ta, group[r], group[l])[mixed]
        anchors = pd.DataFrame({"g": g, "anchor": anchor}).drop_duplicates().groupby("g").size()
        single = anchors.index[anchors.to_numpy() == 1].to_numpy()
        keep[np.flatnonzero(mixed)[np.isin(g, single)]] = True
    return keep


def _names_compatible(a: dict, b: dict) -> bool:
    """First names one person could have written: an initial that agrees, one nickname group, a typo
    (Jaro-Winkler >= 0.8), or the first name swapped with the last."""
    import jellyfish

    fa, fb = a.get("first_name_norm"), b.get("first_name_norm")
    if len(fa) == 1 or len(fb) == 1:
        return fa[0] == fb[0]
    ga, gb = a.get("first_name_group"), b.get("first_name_group")  # nickname keys, "|"-joined
    if ga and gb and set(ga.split("|")) & set(gb.split("|")):
        return True
    if fa == b.get("last_name_norm") or fb == a.get("last_name_norm"):
        return True
    return jellyfish.jaro_winkler_similarity(fa, fb) >= 0.8


def _dates_apart(da: str, db: str) -> bool:
    """Two birth dates (ISO text) one person would not have: not one digit apart, not day and month swapped."""
    import jellyfish

    if da == db or jellyfish.damerau_levenshtein_distance(da, db) <= 1:
        return False
    return not (da[:4] == db[:4] and da[5:7] == db[8:10] and da[8:10] == db[5:7])


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None


def _components(codes: list[int], pairs: list[tuple[int, int]]) -> dict[int, int]:
    """Union-find over `codes` joined by `pairs` (both ends in codes): each code's component root."""
    part = {c: c for c in codes}

    def top(x: int) -> int:
        while part[x] != x:
            part[x] = part[part[x]]
            x = part[x]
        return x

    for u, v in pairs:
        part[top(u)] = top(v)
    return {c: top(c) for c in codes}


def conflict_pairs(codes: list[int], edges: list[tuple[int, int]], people: dict[int, dict]) -> list[tuple[int, int]]:
    """The pairs of one cluster (`codes`, joined by `edges`) that cannot be one person.

    1. Really different birth dates (`_dates_apart`) and first names one person would not write: what a
       household looks like (one address, one phone, one surname). First names alone are not enough
       anywhere in the cluster: typo-ridden data (FEBRL) has true duplicates whose first names are far apart.
    2. Really different birth dates, and the records that hold a birth date are not linked to each other
       across the two dates: the cluster holds them together only through records without a birth date,
       which cannot tell a parent from a child of the same name (two people, one address, one phone).
       Where the data links a record of one date to a record of the other directly, the model accepted the
       disagreement (a typo or a replaced value in one record: FEBRL's duplicates), and it stands.
    3. The same for first names one person would not write, held together only through records without a
       first name (a call-center contact with a surname and the family's phone).
    """
    first = {c: _text(people[c].get("first_name_norm")) for c in codes}
    birth = {c: _text(people[c].get("birth_date")) for c in codes}
    named = _components([c for c in codes if first[c]], [(u, v) for u, v in edges if first.get(u) and first.get(v)])
    dated = _components([c for c in codes if birth[c]], [(u, v) for u, v in edges if birth.get(u) and birth.get(v)])
    out = []
    for i, a in enumerate(codes):
        for b in codes[i + 1:]:
            dates_apart = bool(birth[a] and birth[b]) and _dates_apart(birth[a], birth[b])
            names_apart = bool(first[a] and first[b]) and not _names_compatible(people[a], people[b])
            if ((dates_apart and names_apart) or (dates_apart and dated[a] != dated[b])
                    or (names_apart and named[a] != named[b])):
                out.append((a, b))
    return out


def split_conflicts(n: int, el: np.ndarray, er: np.ndarray, ep: np.ndarray, hard: np.ndarray, root: np.ndarray,
                    people: dict[int, dict]) -> np.ndarray:
    """Edges to cut so that no cluster holds two records that `conflict_pairs` says are two people.

    For each cluster with such a pair: the maximum spanning tree of its edges (by probability), then
    the weakest edge on the tree path between the two records is cut (hard edges, deterministic links
    and `match` decisions, are never cut); repeated until no conflict is left or only hard edges hold
    the pair together. Returns a boolean mask of the edges cut.
    """
    cut = np.zeros(len(el), dtype=bool)
    members: dict[int, list[int]] = {}
    for code in np.flatnonzero(np.bincount(root, minlength=n)[root] > 1):
        if int(code) in people:
            members.setdefault(int(root[code]), []).append(int(code))
    # the edges of each cluster, in edge order (a stable sort by cluster)
    by_cluster = np.argsort(root[el], kind="stable")
    edge_roots = root[el][by_cluster]
    for cluster_root, codes in members.items():
        if len(codes) < 2:
            continue
        in_cluster = by_cluster[np.searchsorted(edge_roots, cluster_root, "left"):
                                np.searchsorted(edge_roots, cluster_root, "right")]
        pairs = conflict_pairs(codes, [(int(el[e]), int(er[e])) for e in in_cluster], people)
        while pairs:
            active = [e for e in in_cluster if not cut[e]]
            # maximum spanning forest (Kruskal, strongest first)
            parent: dict[int, int] = {}

            def find(x: int) -> int:
                while parent.get(x, x) != x:
                    parent[x] = parent.get(parent[x], parent[x])
                    x = parent[x]
                return x

            tree: dict[int, list[tuple[int, int]]] = {}
            for e in sorted(active, key=lambda e: (-ep[e], e)):
                a, b = find(int(el[e])), find(int(er[e]))
                if a != b:
                    parent[a] = b
                    tree.setdefault(int(el[e]), []).append((int(er[e]), e))
                    tree.setdefault(int(er[e]), []).append((int(el[e]), e))
            a, b = pairs[0]
            path = _tree_path(tree, a, b)
            if path is None:  # already apart
                pairs.pop(0)
                continue
            soft = [e for e in path if not hard[e]]
            if not soft:  # only hard evidence joins them: a person decided so, or the data says so
                pairs.pop(0)
                continue
            cut[min(soft, key=lambda e: (ep[e], e))] = True
    return cut


# A soft link weighing less than accept + this margin that is the only thing holding two groups of two
# or more records together is cut (a chain: A-A' ... B-B' joined by one doubtful pair). Re-clustering
# the same links: +4 helped precision on generated 10k samples and FEBRL4 and cost no recall on any
# of them or FEBRL1-3; +7 cost recall on one generated sample (docs/identity.md).
BRIDGE_MARGIN = 4.0


def weak_bridges(n: int, el: np.ndarray, er: np.ndarray, ew: np.ndarray, hard: np.ndarray, root: np.ndarray,
                 max_weight: float) -> np.ndarray:
    """Edges that are bridges of their cluster (removing one disconnects it) with at least two records on
    each side, soft, and weighing less than `max_weight`. Returns a boolean mask over the edges."""
    cut = np.zeros(len(el), dtype=bool)
    sizes = np.bincount(root, minlength=n)
    candidate = (~hard) & (ew < max_weight) & (sizes[root[el]] >= 4)
    # the edges of each cluster, in edge order (a stable sort by cluster)
    by_cluster = np.argsort(root[el], kind="stable")
    edge_roots = root[el][by_cluster]
    for cluster_root in np.unique(root[el[candidate]]):
        edges = by_cluster[np.searchsorted(edge_roots, cluster_root, "left"):
                           np.searchsorted(edge_roots, cluster_root, "right")]
        adj: dict[int, list[tuple[int, int]]] = {}
        for e in edges:
            adj.setdefault(int(el[e]), []).append((int(er[e]), int(e)))
            adj.setdefault(int(er[e]), []).append((int(el[e]), int(e)))
        # Tarjan's bridges, iteratively; subtree sizes tell how many records each side holds
        disc, low, size = {}, {}, {}
        start = int(el[edges[0]])
        total = len(adj)
        timer = 0
        stack = [(start, -1, iter(adj[start]))]
        disc[start] = low[start] = timer
        size[start] = 1
        while stack:
            node, via, it = stack[-1]
            advanced = False
            for nxt, e in it:
                if e == via:
                    continue
                if nxt in disc:
                    low[node] = min(low[node], disc[nxt])
                else:
                    timer += 1
                    disc[nxt] = low[nxt] = timer
                    size[nxt] = 1
                    stack.append((nxt, e, iter(adj[nxt])))
                    advanced = True
                    break
            if not advanced:
                stack.pop()
                if stack:
                    parent = stack[-1][0]
                    low[parent] = min(low[parent], low[node])
                    size[parent] += size[node]
                    if low[node] > disc[parent] and candidate[via] and 2 <= size[node] <= total - 2:
                        cut[via] = True
    return cut


def _tree_path(tree: dict[int, list[tuple[int, int]]], start: int, goal: int) -> list[int] | None:
    """Edge ids on the tree path from start to goal (None when they are not connected)."""
    stack, seen = [(start, [])], {start}
    while stack:
        node, path = stack.pop()
        if node == goal:
            return path
        for nxt, e in tree.get(node, []):
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [e]))
    return None


def cluster(
    record_ids,
    links: pd.DataFrame | None,
    accept_weight: float,
    review_low_weight: float,
    decisions: pd.DataFrame | None = None,
    *,
    evidence: pd.DataFrame | None = None,
    name_only_accept_weight: float | None = None,
    people: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Group records into people and list the uncertain pairs a person should review.

    Edges, first phase: deterministic links, `match` decisions, and links with
    `match_weight >= accept_weight` that rest on more than the name (`comparison_detail` has a
    non-zero weight outside NAME_COMPARISONS). Second phase: links that rest on the name alone,
    used only where unambiguous (`_name_only_edges`). `evidence(record_id, evidence)` says what a
    record holds besides a name (`name`, `contact`, `more`: splink_model.record_evidence; records
    not listed count as `more`); `name_only_accept_weight` (default `accept_weight + 1`) is the bar
    for a name-only link between two clusters that hold more than that.
    A `no_match` decision removes the direct edge of that pair only; when the two records stay
    connected through other links the pair is put back on the review queue as `no_match_conflict`.
    Name-only links at or above `accept_weight` that were left apart go to the queue as `name_only`.
    `people(record_id, first_name_norm, first_name_group, birth_date)`, when given, splits a cluster
    holding two records that cannot be one person (`split_conflicts`: a household joined through its
    shared address or phone); the links cut go to the queue as `conflict_split`. A soft link under
    `accept_weight + BRIDGE_MARGIN` that alone joins two groups of two or more records is cut too
    (`weak_bridges`), and goes to the queue as `bridge`.
    `cluster_key` is the smallest record_id of the cluster (not stable across runs: see ids.py).
    """
    if name_only_accept_weight is None:
        name_only_accept_weight = accept_weight + 1.0
    links = empty_links() if links is None or links.empty else links.reindex(columns=LINK_COLUMNS)
    links = links.assign(match_weight=links["match_weight"].astype(float),
                         match_probability=links["match_probability"].astype(float))
    con = duckdb.connect()
    try:
        con.register("ids_in", arrow_table(pd.DataFrame({"record_id": pd.Series(record_ids).reset_index(drop=True)})))
        con.register("links_in", arrow_table(links))
        con.register("decisions_in", arrow_table(_decisions_frame(decisions)))
        if evidence is None:
            evidence = pd.DataFrame({"record_id": pd.Series(dtype=object), "evidence": pd.Series(dtype=object)})
        con.register("evidence_in", arrow_table(evidence[["record_id", "evidence"]]))
        con.execute(_PREPARE)
        n = con.execute("SELECT count(*) FROM ids").fetchone()[0]
        edges = con.execute(_EDGES, {"accept": float(accept_weight)}).fetchnumpy()
        el, er = np.asarray(edges["l"], dtype=np.int64), np.asarray(edges["r"], dtype=np.int64)
        ep = np.asarray(edges["p"], dtype=float)
        hard = np.asarray(edges["hard"], dtype=bool)
        root = connected_components(n, el, er)
        cand = con.execute(_NAME_ONLY_EDGES, {"low": float(review_low_weight)}).fetchnumpy()
        kinds = con.execute("SELECT i.code, e.evidence FROM ids AS i JOIN evidence_in AS e USING (record_id)").fetchnumpy()
        bare = np.zeros(n, dtype=bool)
        contact = np.zeros(n, dtype=bool)
        codes = np.asarray(kinds["code"], dtype=np.int64)
        kind = np.asarray(kinds["evidence"], dtype=object)
        bare[codes[kind == "name"]] = True
        contact[codes[kind == "contact"]] = True
        use = _name_only_edges(root, bare, contact, cand, float(name_only_accept_weight))
        if use.any():
            el = np.concatenate([el, np.asarray(cand["l"], dtype=np.int64)[use]])
            er = np.concatenate([er, np.asarray(cand["r"], dtype=np.int64)[use]])
            ep = np.concatenate([ep, np.asarray(cand["p"], dtype=float)[use]])
            hard = np.concatenate([hard, np.zeros(int(use.sum()), dtype=bool)])
            root = connected_components(n, el, er)
        split = pd.DataFrame({"record_id_l": pd.Series(dtype=object), "record_id_r": pd.Series(dtype=object),
                              "reason": pd.Series(dtype=object)})
        if people is not None and len(el):
            cols = ["record_id", "first_name_norm", "first_name_group", "last_name_norm", "birth_date"]
            con.register("people_in", arrow_table(people.reindex(columns=cols).astype("string")))
            known = fetch_pandas(con, "SELECT i.code, p.first_name_norm AS f, p.first_name_group AS g, "
                                      "p.last_name_norm AS l, p.birth_date AS d "
                                      "FROM ids AS i JOIN people_in AS p USING (record_id) "
                                      "WHERE p.first_name_norm IS NOT NULL OR p.birth_date IS NOT NULL ORDER BY i.code")
            known["root"] = root[known["code"].to_numpy(dtype=np.int64)] if len(known) else []
            # only clusters with two first names and two birth dates, or with records of two birth dates (first
            # names) joined only through records without one, can hold a conflict (conflict_pairs)
            codes = known["code"].to_numpy(dtype=np.int64)
            for col, part in (("f", "pf"), ("d", "pd")):
                has = np.zeros(n, dtype=bool)
                has[codes[known[col].notna().to_numpy()]] = True
                both = has[el] & has[er]
                known[part] = np.where(known[col].notna(), connected_components(n, el[both], er[both])[codes], -1)
            spread = known.groupby("root").agg(nf=("f", "nunique"), nd=("d", "nunique"))
            for part in ("pf", "pd"):
                spread["c" + part[1]] = known.loc[known[part] >= 0, ["root", part]].drop_duplicates() \
                    .groupby("root").size().reindex(spread.index, fill_value=0)
            maybe = ((spread["nf"] > 1) & (spread["nd"] > 1)) | ((spread["nd"] > 1) & (spread["cd"] > 1)) \
                | ((spread["nf"] > 1) & (spread["cf"] > 1))
            suspect = known[known["root"].isin(spread.index[maybe])]
            by_code = {int(c): {"first_name_norm": f, "first_name_group": g, "last_name_norm": ln, "birth_date": d}
                       for c, f, g, ln, d in suspect[["code", "f", "g", "l", "d"]].itertuples(index=False)}
            cut = split_conflicts(n, el, er, ep, hard, root, by_code)
            if cut.any():
                names = dict(con.execute("SELECT code, record_id FROM ids").fetchall())
                split = pd.DataFrame({"record_id_l": [names[int(c)] for c in el[cut]],
                                      "record_id_r": [names[int(c)] for c in er[cut]], "reason": "conflict_split"})
                el, er, ep, hard = el[~cut], er[~cut], ep[~cut], hard[~cut]
                root = connected_components(n, el, er)
        if len(el):
            ew = np.log2(np.clip(ep, 1e-300, 1 - 1e-16) / np.clip(1 - ep, 1e-16, None))
            bridges = weak_bridges(n, el, er, ew, hard, root, float(accept_weight) + BRIDGE_MARGIN)
            if bridges.any():
                names = dict(con.execute("SELECT code, record_id FROM ids").fetchall())
                split = pd.concat([split, pd.DataFrame({"record_id_l": [names[int(c)] for c in el[bridges]],
                                                        "record_id_r": [names[int(c)] for c in er[bridges]],
                                                        "reason": "bridge"})], ignore_index=True)
                el, er, ep, hard = el[~bridges], er[~bridges], ep[~bridges], hard[~bridges]
                root = connected_components(n, el, er)
        # A record's probability is the best of the edges that hold it in its cluster; singletons are certain.
        best = np.full(n, -1.0)
        np.maximum.at(best, el, ep)
        np.maximum.at(best, er, ep)
        con.register("roots", pa.table({"code": np.arange(n), "root": root, "p": np.where(best < 0, 1.0, best)}))
        con.execute(
            """CREATE TEMP TABLE clusters AS
               SELECT i.record_id, k.record_id AS cluster_key, t.p AS match_probability
               FROM roots AS t JOIN ids AS i ON i.code = t.code JOIN ids AS k ON k.code = t.root"""
        )
        clusters = fetch_pandas(con, "SELECT * FROM clusters ORDER BY record_id")
        review = fetch_pandas(con, _REVIEW, {"low": float(review_low_weight), "accept": float(accept_weight)})
        if len(split):
            con.register("split_in", arrow_table(split))
            cut_rows = fetch_pandas(con, """
                SELECT p.record_id_l, p.record_id_r, p.match_weight, p.match_probability, p.link_type,
                       p.comparison_detail, s.reason,
                       cl.cluster_key AS cluster_key_l, cr.cluster_key AS cluster_key_r,
                       cl.cluster_key = cr.cluster_key AS same_cluster
                FROM split_in AS s
                JOIN pairs AS p ON p.record_id_l = least(s.record_id_l, s.record_id_r)
                               AND p.record_id_r = greatest(s.record_id_l, s.record_id_r)
                JOIN clusters AS cl ON cl.record_id = p.record_id_l
                JOIN clusters AS cr ON cr.record_id = p.record_id_r
                QUALIFY row_number() OVER (PARTITION BY p.record_id_l, p.record_id_r ORDER BY p.match_weight DESC) = 1""")
            review = pd.concat([cut_rows[REVIEW_COLUMNS], review[~review.set_index(["record_id_l", "record_id_r"]).index.isin(
                cut_rows.set_index(["record_id_l", "record_id_r"]).index)]], ignore_index=True)
    finally:
        con.close()
    return clusters, review[REVIEW_COLUMNS]
