//! A byte-wise radix tree of path prefixes: given a request path, it yields every stored
//! prefix of that path in one walk down the tree, so the cost follows the path's length, not
//! the number of prefixes stored.

/// Route indices stored under path prefixes. Each prefix's indices stay in insertion order.
#[derive(Clone, Debug, Default)]
pub(crate) struct PathTrie {
    root: Node,
}

#[derive(Clone, Debug, Default)]
struct Node {
    /// Routes whose prefix ends exactly here, ascending when inserted ascending.
    routes: Vec<u32>,
    /// Sorted by the first byte of their label; no two share a first byte.
    edges: Vec<Edge>,
}

#[derive(Clone, Debug)]
struct Edge {
    /// Never empty.
    label: Box<[u8]>,
    child: Node,
}

impl PathTrie {
    /// Stores `route` under `prefix` (the empty prefix matches every path).
    pub(crate) fn insert(&mut self, prefix: &[u8], route: u32) {
        let mut node = &mut self.root;
        let mut key = prefix;
        loop {
            let Some(&first) = key.first() else {
                node.routes.push(route);
                return;
            };
            let at = node.edges.binary_search_by_key(&first, |e| e.label[0]);
            let i = match at {
                Ok(i) => i,
                Err(i) => {
                    node.edges.insert(
                        i,
                        Edge {
                            label: key.into(),
                            child: Node {
                                routes: vec![route],
                                edges: Vec::new(),
                            },
                        },
                    );
                    return;
                }
            };
            let edge = &mut node.edges[i];
            let common = edge
                .label
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count();
            if common < edge.label.len() {
                // Split the edge: its first `common` bytes lead to a new inner node.
                let rest = Edge {
                    label: edge.label[common..].into(),
                    child: std::mem::take(&mut edge.child),
                };
                edge.label = edge.label[..common].into();
                edge.child.edges.push(rest);
            }
            key = &key[common..];
            node = &mut node.edges[i].child;
        }
    }

    /// Calls `f` with the routes of every stored prefix of `path`, shortest prefix first.
    pub(crate) fn prefixes_of(&self, path: &[u8], mut f: impl FnMut(&[u32])) {
        let mut node = &self.root;
        let mut rest = path;
        loop {
            if !node.routes.is_empty() {
                f(&node.routes);
            }
            let Some(&first) = rest.first() else {
                return;
            };
            let Ok(i) = node.edges.binary_search_by_key(&first, |e| e.label[0]) else {
                return;
            };
            let edge = &node.edges[i];
            match rest.strip_prefix(&*edge.label) {
                Some(r) => rest = r,
                None => return,
            }
            node = &edge.child;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(t: &PathTrie, path: &str) -> Vec<u32> {
        let mut out = Vec::new();
        t.prefixes_of(path.as_bytes(), |r| out.extend_from_slice(r));
        out
    }

    #[test]
    fn finds_every_prefix_and_only_prefixes() {
        let mut t = PathTrie::default();
        for (i, p) in ["/api/v1", "/api", "/", "/api/v2", "", "/apix", "/api"]
            .iter()
            .enumerate()
        {
            t.insert(p.as_bytes(), i as u32);
        }
        assert_eq!(found(&t, "/api/v1/users"), vec![4, 2, 1, 6, 0]);
        assert_eq!(found(&t, "/api/v2"), vec![4, 2, 1, 6, 3]);
        assert_eq!(found(&t, "/apix"), vec![4, 2, 1, 6, 5]);
        assert_eq!(found(&t, "/ap"), vec![4, 2]);
        assert_eq!(found(&t, ""), vec![4]);
        assert_eq!(found(&t, "x"), vec![4]);
    }
}
