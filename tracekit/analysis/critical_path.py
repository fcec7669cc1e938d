"""Critical paths: the chain of work that determined when a flow ended.

Within one trace this is Jaeger UI's algorithm: children are clipped to their parent's
interval (a child wholly outside it is dropped with its subtree); from a span, the path goes
into its last-finishing child, and when a span has no child left that finished before the
point reached, the path covers the span itself back to its start and returns to its parent.

Across a message edge tracekit goes on: when the walk reaches the top of a consumer's tree,
the time between the producer's end and the consumer's start is a `broker_wait` section, and
the walk continues in the producer's trace from the producer's end. A flow's path starts
from the tree that ends last.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tracekit.analysis.model import Section


@dataclass
class Node:
    key: str
    start_ns: int
    end_ns: int
    parent: str | None = None                      # synchronous parent (call edge)
    producer: str | None = None                    # for a consumer at the top of its tree
    children: list[str] = field(default_factory=list)


def sanitize(nodes: dict[str, Node], root: str) -> dict[str, Node]:
    """Jaeger's sanitizing, top-down from `root`: clip each child to its (clipped) parent,
    drop a child wholly outside its parent together with its descendants."""
    kept: dict[str, Node] = {}
    top = nodes[root]
    kept[root] = Node(root, top.start_ns, top.end_ns, None, top.producer, [])
    stack = [root]
    while stack:
        parent_key = stack.pop()
        parent = kept[parent_key]
        for child_key in nodes[parent_key].children:
            child = nodes[child_key]
            if child.start_ns >= parent.end_ns or child.end_ns <= parent.start_ns:
                continue   # wholly outside: dropped, and its subtree with it
            start = max(child.start_ns, parent.start_ns)
            end = min(child.end_ns, parent.end_ns)
            kept[child_key] = Node(child_key, start, end, parent_key, None, [])
            parent.children.append(child_key)
            stack.append(child_key)
    return kept


def walk(tree: dict[str, Node], key: str, sections: list[Section],
         returning: int | None = None) -> str:
    """Jaeger's computeCriticalPath, as a loop (every step of the recursion is a tail call).
    Appends sections, latest first; returns the key of the tree's root where it stopped."""
    while True:
        span = tree[key]
        candidates = [tree[c] for c in span.children
                      if returning is None or tree[c].end_ns < returning]
        section_end = returning if returning is not None else span.end_ns
        if candidates:
            last = max(candidates, key=lambda n: n.end_ns)
            if last.end_ns != section_end:
                sections.append(Section(key, last.end_ns, section_end))
            key, returning = last.key, None
            continue
        if span.start_ns != section_end:
            sections.append(Section(key, span.start_ns, section_end))
        if span.parent is None:
            return key
        key, returning = span.parent, span.start_ns


def trace_critical_path(nodes: dict[str, Node], root: str) -> list[Section]:
    """The critical path of one synchronous tree, earliest section first (Jaeger's answer)."""
    sections: list[Section] = []
    walk(sanitize(nodes, root), root, sections)
    return sections[::-1]


def flow_critical_path(nodes: dict[str, Node], tree_roots: list[str]) -> list[Section]:
    """The critical path of a flow made of several trees joined by message edges.

    `nodes[k].producer` names the producer span of a tree root that consumes a message.
    Sections come earliest first; their durations add up to the flow's span of time from
    the start of the chain to the end of the last tree."""
    trees = {root: sanitize(nodes, root) for root in tree_roots}
    tree_of = {key: root for root, tree in trees.items() for key in tree}
    last_root = max(tree_roots, key=lambda r: (nodes[r].end_ns, r))
    sections: list[Section] = []
    key, returning = last_root, None
    visited: set[str] = set()
    while True:
        root = tree_of[key]
        tree = trees[root]
        stopped = walk(tree, key, sections, returning)
        if stopped in visited:
            break
        visited.add(stopped)
        producer = nodes[stopped].producer
        if producer is None or producer not in tree_of:
            break
        wait_start = nodes[producer].end_ns
        consumer_start = tree[stopped].start_ns
        if consumer_start > wait_start:
            sections.append(Section(stopped, wait_start, consumer_start, "broker_wait"))
        # Continue in the producer's tree, from the producer's end (or the consumer's start
        # when the producer outlived it).
        key = producer
        producer_end = min(nodes[producer].end_ns, consumer_start)
        producer_tree = trees[tree_of[producer]]
        returning = None if producer_end >= producer_tree[producer].end_ns else producer_end
        # Walk the producer's own subtree first, then up its ancestors.
    return sections[::-1]
