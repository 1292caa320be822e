package charttests

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// object is a manifest or an API object as generic JSON.
type object = map[string]any

// splitDocs turns a rendered multi-document stream into objects (empty documents skipped).
func splitDocs(t *testing.T, stream string) []object {
	t.Helper()
	var out []object
	for _, doc := range strings.Split(stream, "\n---\n") {
		if strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(stripComments(doc)), "---")) == "" {
			continue
		}
		var o object
		// The split ate the newline that ends the document (and its last block scalar).
		if err := yaml.Unmarshal([]byte(doc+"\n"), &o); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		out = append(out, o)
	}
	return out
}

// toObject round-trips a typed value into generic JSON.
func toObject(t *testing.T, v any) object {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var o object
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	return o
}

// subset lists where a live object differs from what was rendered: every field the
// rendered object sets must hold the same value in the live one, which may add fields (API
// defaults, the ServiceAccount volume, status). A field the server dropped or rewrote is a
// difference. Lists of named items (containers, ports, volumes, mounts) are matched by name
// and must keep the rendered order; other lists must match item by item.
func subset(want, got any, path string) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: rendered a map, live %T %v", path, got, got)}
		}
		var diffs []string
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				if isEmpty(wv) {
					continue // `annotations: {}` and the like are not stored
				}
				diffs = append(diffs, fmt.Sprintf("%s.%s: rendered %v, missing on the server", path, k, wv))
				continue
			}
			diffs = append(diffs, subset(wv, gv, path+"."+k)...)
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: rendered a list, live %T %v", path, got, got)}
		}
		if names := itemNames(w); names != nil {
			return subsetNamed(w, g, names, path)
		}
		if len(w) != len(g) {
			return []string{fmt.Sprintf("%s: rendered %d items %v, live %d %v", path, len(w), w, len(g), g)}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, subset(w[i], g[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return diffs
	default:
		if !reflect.DeepEqual(want, got) {
			return []string{fmt.Sprintf("%s: rendered %v (%T), live %v (%T)", path, want, want, got, got)}
		}
		return nil
	}
}

func subsetNamed(w, g []any, names []string, path string) []string {
	liveNames := itemNames(g)
	var diffs []string
	var order []int
	for i, n := range names {
		j := slices.Index(liveNames, n)
		if j < 0 {
			diffs = append(diffs, fmt.Sprintf("%s: rendered item %q, missing on the server (live: %v)", path, n, liveNames))
			continue
		}
		order = append(order, j)
		diffs = append(diffs, subset(w[i], g[j], fmt.Sprintf("%s[%s]", path, n))...)
	}
	if !slices.IsSorted(order) {
		diffs = append(diffs, fmt.Sprintf("%s: rendered order %v, live %v", path, names, liveNames))
	}
	return diffs
}

// itemNames returns the "name" of every item, or nil unless every item is a map with one.
func itemNames(l []any) []string {
	names := make([]string, 0, len(l))
	for _, it := range l {
		m, ok := it.(map[string]any)
		if !ok {
			return nil
		}
		n, ok := m["name"].(string)
		if !ok {
			return nil
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return nil
	}
	return names
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

func TestSubset(t *testing.T) {
	rendered := object{"spec": map[string]any{
		"containers": []any{map[string]any{"name": "a", "image": "x"}, map[string]any{"name": "b"}},
		"args":       []any{"run", "-c"},
	}}
	live := object{"spec": map[string]any{
		"containers": []any{map[string]any{"name": "a", "image": "x", "imagePullPolicy": "Always"}, map[string]any{"name": "sa"}, map[string]any{"name": "b"}},
		"args":       []any{"run", "-c"},
		"extra":      true,
	}}
	if d := subset(rendered, live, ""); len(d) != 0 {
		t.Errorf("defaults and added items must be allowed: %v", d)
	}
	for _, c := range []struct {
		name string
		edit func(object)
	}{
		{"dropped field", func(o object) { delete(o["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any), "image") }},
		{"changed value", func(o object) { o["spec"].(map[string]any)["args"] = []any{"run", "-d"} }},
		{"missing item", func(o object) {
			o["spec"].(map[string]any)["containers"] = []any{map[string]any{"name": "a", "image": "x"}}
		}},
		{"reordered", func(o object) {
			o["spec"].(map[string]any)["containers"] = []any{map[string]any{"name": "b"}, map[string]any{"name": "a", "image": "x"}}
		}},
	} {
		l := toObject(t, live)
		c.edit(l)
		if d := subset(rendered, l, ""); len(d) == 0 {
			t.Errorf("%s: not reported", c.name)
		}
	}
}
