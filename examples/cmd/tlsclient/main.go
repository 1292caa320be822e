// Command tlsclient is a Go crypto/tls + net/http client for Ringside's TLS tests: it makes
// requests with the given trust anchors, client certificate, SNI, ALPN and protocol versions,
// and prints one JSON line per request with what the handshake negotiated.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

type result struct {
	OK           bool   `json:"ok"`
	Status       int    `json:"status,omitempty"`
	Proto        string `json:"proto,omitempty"`
	TLSVersion   string `json:"tls_version,omitempty"`
	ALPN         string `json:"alpn,omitempty"`
	ServerSerial string `json:"server_serial,omitempty"`
	ServerURI    string `json:"server_uri,omitempty"`
	Resumed      bool   `json:"resumed"`
	Body         string `json:"body,omitempty"`
	Error        string `json:"error,omitempty"`
}

var versions = map[string]uint16{
	"1.0": tls.VersionTLS10, "1.1": tls.VersionTLS11, "1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13,
}

func main() {
	url := flag.String("url", "", "https URL to GET")
	ca := flag.String("ca", "", "CA bundle (PEM) that signs the server's certificate")
	cert := flag.String("cert", "", "client certificate (PEM)")
	key := flag.String("key", "", "client private key (PEM)")
	sni := flag.String("sni", "", "server name to send and verify (default: the URL's host)")
	alpn := flag.String("alpn", "h2,http/1.1", "ALPN protocols to offer, comma-separated (empty: none)")
	minV := flag.String("min-version", "1.2", "lowest TLS version: 1.0, 1.1, 1.2, 1.3")
	maxV := flag.String("max-version", "1.3", "highest TLS version")
	count := flag.Int("count", 1, "requests to make")
	newConn := flag.Bool("new-conn", false, "a new connection (and handshake) per request; resumption via a session cache")
	header := flag.String("header", "", "extra request header, NAME:VALUE")
	flag.Parse()

	cfg := &tls.Config{ServerName: *sni, MinVersion: versions[*minV], MaxVersion: versions[*maxV],
		ClientSessionCache: tls.NewLRUClientSessionCache(16)}
	if *alpn != "" {
		cfg.NextProtos = strings.Split(*alpn, ",")
	}
	if *ca != "" {
		pem, err := os.ReadFile(*ca)
		if err != nil {
			fail(err)
		}
		cfg.RootCAs = x509.NewCertPool()
		cfg.RootCAs.AppendCertsFromPEM(pem)
	}
	if *cert != "" {
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			fail(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	newClient := func() *http.Client {
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: strings.Contains(*alpn, "h2"),
			DisableKeepAlives: *newConn}
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	client := newClient()
	enc := json.NewEncoder(os.Stdout)
	exit := 0
	for i := 0; i < *count; i++ {
		r := get(client, *url, *header)
		if !r.OK {
			exit = 1
		}
		_ = enc.Encode(r)
	}
	os.Exit(exit)
}

func get(client *http.Client, url, header string) result {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return result{Error: err.Error()}
	}
	if name, value, ok := strings.Cut(header, ":"); ok {
		req.Header.Set(name, value)
	}
	res, err := client.Do(req)
	if err != nil {
		return result{Error: err.Error()}
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	r := result{OK: true, Status: res.StatusCode, Proto: res.Proto, Body: string(body)}
	if s := res.TLS; s != nil {
		r.TLSVersion = tls.VersionName(s.Version)
		r.ALPN = s.NegotiatedProtocol
		r.Resumed = s.DidResume
		if len(s.PeerCertificates) > 0 {
			leaf := s.PeerCertificates[0]
			r.ServerSerial = leaf.SerialNumber.String()
			for _, u := range leaf.URIs {
				r.ServerURI = u.String()
			}
		}
	}
	return r
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(2)
}
