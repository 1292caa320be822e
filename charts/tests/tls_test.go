package charttests

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// tlsConfig is the part of ringside.yaml that names TLS material.
type tlsConfig struct {
	Identity *struct {
		SpiffeSocket string `json:"spiffe_socket"`
	} `json:"identity"`
	Listeners []struct {
		TLS *struct {
			Mode     string `json:"mode"`
			Identity string `json:"identity"`
			Cert     string `json:"cert"`
			Key      string `json:"key"`
			ClientCA string `json:"client_ca"`
		} `json:"tls"`
		Authz *struct {
			Allow []string `json:"allow"`
		} `json:"authz"`
	} `json:"listeners"`
	Clusters []struct {
		TLS *struct {
			Identity string `json:"identity"`
			CA       string `json:"ca"`
			Cert     string `json:"cert"`
			Key      string `json:"key"`
		} `json:"tls"`
	} `json:"clusters"`
}

// tlsCase is what a values set must wire up.
type tlsCase struct {
	file     string
	set      []string
	mode     string // the inbound listener's tls.mode; "" for none
	spiffe   bool   // identity from the SPIRE agent's socket
	volume   func(v corev1.Volume) bool
	mutual   bool
	allowLen int
}

var tlsCases = map[string]tlsCase{
	"default": {file: "", mode: ""},
	"tls-secret": {file: "tls-secret", mode: "strict", mutual: true, allowLen: 2,
		volume: func(v corev1.Volume) bool { return v.Secret != nil && v.Secret.SecretName == "demo-ringside-tls" }},
	"tls-csi": {file: "tls-csi", mode: "permissive", mutual: true,
		volume: func(v corev1.Volume) bool {
			return v.CSI != nil && v.CSI.Driver == "spiffe.csi.cert-manager.io" && *v.CSI.ReadOnly &&
				v.CSI.VolumeAttributes["spiffe.csi.cert-manager.io/fs-group"] == "2102"
		}},
	"tls-spire": {file: "tls-spire", mode: "strict", spiffe: true, mutual: true, allowLen: 1,
		volume: func(v corev1.Volume) bool { return v.CSI != nil && v.CSI.Driver == "csi.spiffe.io" && *v.CSI.ReadOnly }},
	"tls-spire-hostpath": {file: "tls-spire", set: []string{"tls.spire.socketVolume=hostPath"}, mode: "strict", spiffe: true, mutual: true, allowLen: 1,
		volume: func(v corev1.Volume) bool {
			return v.HostPath != nil && v.HostPath.Path == "/run/spire/agent-sockets" && *v.HostPath.Type == corev1.HostPathDirectory
		}},
	"tls-secret-one-way": {file: "tls-secret", set: []string{"tls.mutual=false", "tls.allow=null"}, mode: "strict",
		volume: func(v corev1.Volume) bool { return v.Secret != nil }},
}

// TestTLSWiring: every certificate file, key, CA bundle and Workload API socket that the
// rendered config names lies on a volume mounted read-only in the Ringside container, and the
// volume is the kind the values asked for (Secret, csi-driver-spiffe, SPIFFE CSI, hostPath).
func TestTLSWiring(t *testing.T) {
	for name, c := range tlsCases {
		t.Run(name, func(t *testing.T) {
			file := ""
			if c.file != "" {
				file = filepath.Join(chartDir, "ci", c.file+"-values.yaml")
			}
			args := []string{"--set", "example.enabled=true"}
			for _, s := range c.set {
				args = append(args, "--set", s)
			}
			m := decodeStrict(t, render(t, file, args...))
			var cfg tlsConfig
			if err := yaml.Unmarshal([]byte(m.configMaps[0].Data["ringside.yaml"]), &cfg); err != nil {
				t.Fatal(err)
			}
			spec := m.deployments[0].Spec.Template.Spec
			rs, _ := findRingside(t, spec)
			l := cfg.Listeners[0]
			if c.mode == "" {
				if l.TLS != nil || cfg.Identity != nil || len(rs.VolumeMounts) != 1 || len(spec.Volumes) != 1 {
					t.Fatalf("tls off, yet TLS rendered: %+v, %d mounts, %d volumes", l.TLS, len(rs.VolumeMounts), len(spec.Volumes))
				}
				return
			}
			if l.TLS == nil || l.TLS.Mode != c.mode {
				t.Fatalf("inbound tls %+v, want mode %s", l.TLS, c.mode)
			}
			if got := (l.Authz != nil && len(l.Authz.Allow) == c.allowLen) || (l.Authz == nil && c.allowLen == 0); !got {
				t.Errorf("authz %+v, want %d entries", l.Authz, c.allowLen)
			}
			// Each path must be on the TLS volume's mount.
			var paths []string
			if c.spiffe {
				if l.TLS.Identity != "spiffe" || cfg.Identity == nil {
					t.Fatalf("spire: listener identity %q, top-level identity %+v", l.TLS.Identity, cfg.Identity)
				}
				u, err := url.Parse(cfg.Identity.SpiffeSocket)
				if err != nil || u.Scheme != "unix" {
					t.Fatalf("spiffe_socket %q: want unix:///path", cfg.Identity.SpiffeSocket)
				}
				paths = append(paths, u.Path)
			} else {
				if (l.TLS.ClientCA != "") != c.mutual {
					t.Errorf("client_ca %q, mutual %v", l.TLS.ClientCA, c.mutual)
				}
				paths = append(paths, l.TLS.Cert, l.TLS.Key, l.TLS.ClientCA)
				for _, cl := range cfg.Clusters {
					if cl.TLS != nil {
						paths = append(paths, cl.TLS.CA, cl.TLS.Cert, cl.TLS.Key)
					}
				}
			}
			for _, p := range paths {
				if p == "" {
					continue
				}
				vol := volumeOf(t, spec, rs, p)
				if !c.volume(vol) {
					t.Errorf("%s is on volume %+v, not the one tls.source asks for", p, vol)
				}
			}
		})
	}
}

// volumeOf is the pod volume whose read-only mount in `rs` holds `path`.
func volumeOf(t *testing.T, spec corev1.PodSpec, rs corev1.Container, path string) corev1.Volume {
	t.Helper()
	for _, vm := range rs.VolumeMounts {
		if strings.HasPrefix(path, strings.TrimSuffix(vm.MountPath, "/")+"/") {
			if !vm.ReadOnly {
				t.Errorf("mount %s is writable", vm.MountPath)
			}
			for _, v := range spec.Volumes {
				if v.Name == vm.Name {
					return v
				}
			}
			t.Fatalf("mount %s names no volume %s", vm.MountPath, vm.Name)
		}
	}
	t.Fatalf("%s is on no volume mounted in the ringside container (%+v)", path, rs.VolumeMounts)
	return corev1.Volume{}
}

// writeTLSFiles writes what cert-manager and csi-driver-spiffe write (ca.crt, tls.crt, and a
// PKCS#8 tls.key: a P-256 CA and a leaf with a SPIFFE ID) into dir, for `ringside check`.
func writeTLSFiles(t *testing.T, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := url.Parse("spiffe://cluster.local/ns/default/sa/demo")
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		URIs: []*url.URL{id}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"ca.crt":  {Type: "CERTIFICATE", Bytes: caDER},
		"tls.crt": {Type: "CERTIFICATE", Bytes: leafDER},
		"tls.key": {Type: "PRIVATE KEY", Bytes: pkcs8},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
