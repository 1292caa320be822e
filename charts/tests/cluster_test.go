package charttests

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A test control plane: etcd, kube-apiserver and kube-controller-manager on 127.0.0.1, built
// by charts/tests/run.sh from the pinned module in charts/tests/controlplane into
// target/tools/k8s. No kubelet runs, so Pods stay Pending, but the API server has stored them
// after admission (PodSecurity included) and the controller-manager has created them from
// Deployments through ReplicaSets, exactly as on a real cluster.
type controlPlane struct {
	dir        string // certificates, kubeconfig, data and logs
	server     string // https://127.0.0.1:PORT
	kubeconfig string // admin credentials for helm and kubectl
	token      string // the static admin token (group system:masters)
	client     *http.Client
	procs      []*exec.Cmd
	logs       []string
}

var (
	clusterOnce sync.Once
	theCluster  *controlPlane
	clusterErr  error
)

// cluster starts the control plane on first use (so the render-only tests never pay for it)
// and returns it; TestMain stops it when every test is done.
func cluster(t *testing.T) *controlPlane {
	t.Helper()
	clusterOnce.Do(func() { theCluster, clusterErr = startControlPlane() })
	if clusterErr != nil {
		t.Fatalf("control plane: %v", clusterErr)
	}
	return theCluster
}

func TestMain(m *testing.M) {
	code := m.Run()
	if theCluster != nil {
		theCluster.stop()
	}
	os.Exit(code)
}

// kubeTool is a binary built into target/tools/k8s (KUBE_TOOLS overrides the directory).
func kubeTool(name string) (string, error) {
	dir := os.Getenv("KUBE_TOOLS")
	if dir == "" {
		dir = "../../target/tools/k8s"
	}
	p, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found (set KUBE_TOOLS, or run `make chart-test`, which builds it): %w", p, err)
	}
	return p, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startControlPlane() (*controlPlane, error) {
	began := time.Now()
	dir, err := os.MkdirTemp("", "ringside-kube-")
	if err != nil {
		return nil, err
	}
	c := &controlPlane{dir: dir}
	ok := false
	defer func() {
		if !ok {
			c.stop()
		}
	}()
	ca, err := c.writeCerts()
	if err != nil {
		return nil, err
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	c.server = fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	c.token = "ringside-chart-test-admin"
	if err := os.WriteFile(c.path("tokens.csv"), []byte(c.token+",admin,admin,system:masters\n"), 0o600); err != nil {
		return nil, err
	}
	if err := c.writeKubeconfig(ca); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	// etcd: fsync off, it is thrown away with the directory.
	if err := c.spawn("etcd", "--name=default", "--data-dir="+c.path("etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL, "--unsafe-no-fsync", "--log-level=warn"); err != nil {
		return nil, err
	}
	// The API server with its default admission plugins (PodSecurity, ServiceAccount, ...).
	if err := c.spawn("kube-apiserver", "--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", ports[2]),
		"--tls-cert-file="+c.path("serving.crt"), "--tls-private-key-file="+c.path("serving.key"),
		"--token-auth-file="+c.path("tokens.csv"), "--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc", "--service-account-key-file="+c.path("sa.pub"),
		"--service-account-signing-key-file="+c.path("sa.key"), "--service-cluster-ip-range=10.96.0.0/16",
		"--cert-dir="+c.path("apiserver-certs")); err != nil {
		return nil, err
	}
	if err := c.waitFor("kube-apiserver /readyz", 120*time.Second, func() bool {
		code, _ := c.get("/readyz", nil)
		return code == http.StatusOK
	}); err != nil {
		return nil, err
	}
	apiReady := time.Since(began)
	// Only the controllers that take a Deployment to Pods, give namespaces their service
	// account, and clean up after `helm uninstall`.
	if err := c.spawn("kube-controller-manager", "--kubeconfig="+c.kubeconfig, "--leader-elect=false",
		"--secure-port=0", "--root-ca-file="+c.path("ca.crt"), "--service-account-private-key-file="+c.path("sa.key"),
		"--controllers=deployment-controller,replicaset-controller,serviceaccount-controller,"+
			"serviceaccount-token-controller,garbage-collector-controller,namespace-controller,"+
			"root-ca-certificate-publisher-controller"); err != nil {
		return nil, err
	}
	if err := c.waitFor("kube-controller-manager (the default ServiceAccount)", 120*time.Second, func() bool {
		code, _ := c.get("/api/v1/namespaces/default/serviceaccounts/default", nil)
		return code == http.StatusOK
	}); err != nil {
		return nil, err
	}
	fmt.Printf("control plane: kube-apiserver ready %.1fs after start, controller-manager %.1fs (%s)\n",
		apiReady.Seconds(), time.Since(began).Seconds(), dir)
	ok = true
	return c, nil
}

func (c *controlPlane) path(name string) string { return filepath.Join(c.dir, name) }

// spawn starts one component with its output in DIR/NAME.log. Pdeathsig kills it if the test
// binary dies without reaching TestMain's stop.
func (c *controlPlane) spawn(name string, args ...string) error {
	bin, err := kubeTool(name)
	if err != nil {
		return err
	}
	logPath := c.path(name + ".log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	c.procs = append(c.procs, cmd)
	c.logs = append(c.logs, logPath)
	return nil
}

// waitFor polls cond until it holds, a component exits, or the deadline passes.
func (c *controlPlane) waitFor(what string, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		for i, p := range c.procs {
			if processExited(p) {
				return fmt.Errorf("%s exited while waiting for %s:\n%s", filepath.Base(p.Path), what, tail(c.logs[i]))
			}
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, l := range c.logs {
				b.WriteString(tail(l))
			}
			return fmt.Errorf("%s not ready after %v:\n%s", what, limit, b.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

// processExited reports whether the child is a zombie (exited, not yet reaped).
func processExited(p *exec.Cmd) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Process.Pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return fmt.Sprintf("--- %s (tail)\n%s\n", path, b)
}

// stop ends every component by its PID, newest first (SIGTERM, then SIGKILL after 10 s), and
// removes the directory.
func (c *controlPlane) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	c.procs = nil
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// writeCerts writes a CA, the API server's serving certificate for 127.0.0.1, and the
// service-account signing key pair; it returns the CA certificate (PEM).
func (c *controlPlane) writeCerts() ([]byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ringside-chart-test-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	files := map[string][]byte{"ca.crt": caPEM, "serving.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER})}
	for name, key := range map[string]*ecdsa.PrivateKey{"serving.key": srvKey, "sa.key": saKey} {
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, err
		}
		files[name] = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	files["sa.pub"] = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	for name, b := range files {
		if err := os.WriteFile(c.path(name), b, 0o600); err != nil {
			return nil, err
		}
	}
	return caPEM, nil
}

func (c *controlPlane) writeKubeconfig(ca []byte) error {
	c.kubeconfig = c.path("admin.kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: %q, certificate-authority-data: %s}
users:
- name: admin
  user: {token: %q}
contexts:
- name: test
  context: {cluster: test, user: admin, namespace: default}
current-context: test
`, c.server, base64.StdEncoding.EncodeToString(ca), c.token)
	return os.WriteFile(c.kubeconfig, []byte(cfg), 0o600)
}
