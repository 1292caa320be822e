package charttests

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"
)

// checkDashboard: the dashboard ConfigMap appears exactly when asked for, carries the label
// Grafana's sidecar selects by, and holds the chart's dashboards/ringside.json unchanged. That
// every query in it is valid PromQL over series Ringside really exports is checked against a
// live instance and a real Prometheus by integration/tests/dashboard.rs.
func checkDashboard(t *testing.T, m manifests, w want) {
	t.Helper()
	if w.dashboard != (len(m.dashboards) == 1) {
		t.Fatalf("dashboard wanted: %v, rendered: %d", w.dashboard, len(m.dashboards))
	}
	if !w.dashboard {
		return
	}
	cm := m.dashboards[0]
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap labels %v lack grafana_dashboard: \"1\" (the Grafana sidecar's default)", cm.Labels)
	}
	want, err := os.ReadFile("../ringside/dashboards/ringside.json")
	if err != nil {
		t.Fatal(err)
	}
	got := cm.Data["ringside.json"]
	if got+"\n" != string(want) && got != string(want) {
		t.Errorf("the ConfigMap's ringside.json differs from dashboards/ringside.json")
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(got), &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.UID == "" {
		t.Error("dashboard has no uid (Grafana would make a new one on every load)")
	}
	metric := regexp.MustCompile(`ringside_[a-z0-9_]+`)
	queries := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			queries++
			if !metric.MatchString(tg.Expr) {
				t.Errorf("%s panel query %q names no Ringside metric", p.Type, tg.Expr)
			}
		}
	}
	if queries < 10 {
		t.Errorf("only %d queries in the dashboard", queries)
	}
}
