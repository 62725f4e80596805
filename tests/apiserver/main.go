// Command signet-apiserver runs a real Kubernetes control plane on loopback for
// Signet's tests: an embedded etcd, the kube-apiserver (RBAC on, service-account
// tokens on) and, in a child process, kube-controller-manager with the garbage
// collector, namespace and service-account controllers.
//
// It writes an admin kubeconfig to the path given by --kubeconfig, prints
// exactly one line on stdout when the cluster is usable:
//
//	ready <kubeconfig-path>
//
// and removes its temporary directory (etcd data, certificates, kubeconfig)
// when it receives SIGTERM or SIGINT, or, with --exit-on-stdin-eof, when its
// standard input is closed (which is how a parent that dies takes it along).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/component-base/compatibility"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
)

// auditPolicy logs, at the Metadata level (user, verb, resource, namespace, name; no bodies), every
// request made by a ServiceAccount (watches as soon as they start).
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
`

// controllers run by the child kube-controller-manager (node mode adds nodeControllers).
const controllers = "garbage-collector-controller,namespace-controller,serviceaccount-controller"

func main() {
	// The parent may be gone (and our stdout/stderr pipes with it) while we shut down: a write
	// to a broken pipe must return EPIPE, not kill us before the temp dir is removed.
	signal.Ignore(syscall.SIGPIPE)
	if len(os.Args) > 1 {
		if _, ok := components[os.Args[1]]; ok {
			os.Exit(runComponent(os.Args[1], os.Args[2:]))
		}
	}
	if len(os.Args) > 1 && os.Args[1] == nodeChildCommand {
		os.Exit(runNodeChild(os.Args[2:]))
	}
	os.Exit(runControlPlane(os.Args[1:]))
}

type harnessFlags struct {
	kubeconfig     string
	exitOnStdinEOF bool
	noControllers  bool
	verbosity      int
	readyTimeout   time.Duration
	keepKubeconfig bool
	auditLog       string

	// node mode (node.go)
	node         bool
	images       stringList
	exposedPorts portList
}

// register adds the harness's flags to fs.
func (hf *harnessFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&hf.kubeconfig, "kubeconfig", "", "where to write the admin kubeconfig (default: inside the temp dir)")
	fs.BoolVar(&hf.exitOnStdinEOF, "exit-on-stdin-eof", false, "shut down when standard input is closed")
	fs.BoolVar(&hf.noControllers, "no-controller-manager", false, "do not run kube-controller-manager (no garbage collection)")
	fs.IntVar(&hf.verbosity, "v", 0, "klog verbosity of the components (logs go to stderr)")
	fs.DurationVar(&hf.readyTimeout, "ready-timeout", 2*time.Minute, "give up when not ready after this long")
	fs.BoolVar(&hf.keepKubeconfig, "keep-kubeconfig", false, "leave the kubeconfig file in place at exit")
	fs.StringVar(&hf.auditLog, "audit-log", os.Getenv("SIGNET_APISERVER_AUDIT_LOG"),
		"write an audit log (JSON lines, metadata only) of every request made by a ServiceAccount to this file, removed at exit like the kubeconfig (default: $SIGNET_APISERVER_AUDIT_LOG; empty: none)")
	fs.BoolVar(&hf.node, "node", false, "also run a node (scheduler, kubelet, containerd, CNI, kube-proxy) in network and mount namespaces of its own")
	fs.Var(&hf.images, "image", "(node mode, repeatable) an OCI image archive to import into the node's containerd")
	fs.Var(&hf.exposedPorts, "expose-host-port", "(node mode, repeatable) make 127.0.0.1:PORT of the host reachable from Pods at NODE-IP:PORT")
}

func runControlPlane(args []string) int {
	var hf harnessFlags
	fs := flag.NewFlagSet("signet-apiserver", flag.ContinueOnError)
	hf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !hf.node && (len(hf.images) > 0 || len(hf.exposedPorts) > 0) {
		fmt.Fprintln(os.Stderr, "signet-apiserver: --image and --expose-host-port need --node")
		return 2
	}

	// Temp dirs are named after this process, so that the next harness can remove this one's if
	// it is SIGKILLed (sweepStaleTempDirs; a node harness sweeps its kind after its cgroups).
	sweepStaleTempDirs(plainTempPrefix)
	prefix := fmt.Sprintf("%s%d-", plainTempPrefix, os.Getpid())
	if hf.node {
		prefix = fmt.Sprintf("%s%d-", nodeTempPrefix, os.Getpid())
	}
	tmp, err := os.MkdirTemp("", prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 1
	}
	if hf.kubeconfig == "" {
		hf.kubeconfig = filepath.Join(tmp, "admin.kubeconfig")
	}
	if abs, err := filepath.Abs(hf.kubeconfig); err == nil {
		hf.kubeconfig = abs
	}
	if hf.node {
		return runNodeParent(hf, tmp)
	}

	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-signals
		klog.Infof("signet-apiserver: %v received, shutting down", s)
		cancel()
	}()
	if hf.exitOnStdinEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			klog.Info("signet-apiserver: stdin closed, shutting down")
			cancel()
		}()
	}

	cp := &controlPlane{tmp: tmp, flags: hf}
	code := 0
	if err := cp.run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "signet-apiserver:", err)
		code = 1
	}
	cancel()
	cp.shutdown()
	return code
}

type controlPlane struct {
	tmp   string
	flags harnessFlags
	// node is set in node mode (inside the node's namespaces), nil in plain mode.
	node *nodeRuntime

	etcd         *embed.Etcd
	apiserverErr chan error
	// children: the controller manager and, in node mode, the node's processes, stopped in
	// reverse order.
	children  []*childProcess
	childDied chan string
}

func (cp *controlPlane) run(ctx context.Context) error {
	logCfg := logsapi.NewLoggingConfiguration()
	logCfg.Verbosity = logsapi.VerbosityLevel(cp.flags.verbosity)

	pki, err := writePKI(filepath.Join(cp.tmp, "pki"), cp.node != nil)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}

	etcdURL, err := cp.startEtcd()
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}

	listenAddr := "127.0.0.1:0"
	if cp.node != nil {
		// Inside the node's own network namespace: every address of it, the node IP included.
		listenAddr = fmt.Sprintf("0.0.0.0:%d", apiServerNodePort)
	}
	listener, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	port := listener.Addr().(*net.TCPAddr).Port
	server := fmt.Sprintf("https://127.0.0.1:%d", port)
	if cp.node != nil {
		// The host reaches the API server through the forwarded host port.
		server = fmt.Sprintf("https://127.0.0.1:%d", cp.node.hostPort)
	}

	if err := cp.startAPIServer(ctx, listener, etcdURL, pki); err != nil {
		return fmt.Errorf("kube-apiserver: %w", err)
	}

	if err := writeKubeconfig(cp.flags.kubeconfig, server, pki.caCert, pki.adminCert, pki.adminKey); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	// The components' kubeconfig: the API server as seen from where they run.
	componentsKubeconfig := filepath.Join(cp.tmp, "components.kubeconfig")
	if err := writeKubeconfig(componentsKubeconfig, fmt.Sprintf("https://127.0.0.1:%d", port), pki.caCert, pki.adminCert, pki.adminKey); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if cp.node != nil {
		if err := cp.node.startForwarding(port); err != nil {
			return err
		}
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", componentsKubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}

	readyCtx, readyCancel := context.WithTimeout(ctx, cp.flags.readyTimeout)
	defer readyCancel()
	if err := cp.waitAPIServerReady(readyCtx, client); err != nil {
		return err
	}
	if !cp.flags.noControllers {
		if err := cp.startControllerManager(componentsKubeconfig, pki); err != nil {
			return fmt.Errorf("kube-controller-manager: %w", err)
		}
		// The service-account controller creating "default" in "default"
		// shows the controller manager is up and its informers synced.
		if err := cp.waitFor(readyCtx, "kube-controller-manager", func() (bool, error) {
			_, err := client.CoreV1().ServiceAccounts("default").Get(readyCtx, "default", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return err == nil, nil
		}); err != nil {
			return err
		}
	}
	if cp.node != nil {
		if err := cp.node.start(readyCtx, cp, componentsKubeconfig, pki, client); err != nil {
			return fmt.Errorf("node: %w", err)
		}
		fmt.Fprintf(os.Stdout, "node-ip %s\n", nodeIP)
	}

	fmt.Fprintf(os.Stdout, "ready %s\n", cp.flags.kubeconfig)
	_ = os.Stdout.Sync()

	select {
	case <-ctx.Done():
		return nil
	case err := <-cp.apiserverErr:
		return fmt.Errorf("kube-apiserver stopped: %v", err)
	case name := <-cp.childDied:
		return fmt.Errorf("%s exited", name)
	case err := <-cp.etcd.Err():
		return fmt.Errorf("etcd stopped: %v", err)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (cp *controlPlane) startEtcd() (string, error) {
	clientPort, err := freePort()
	if err != nil {
		return "", err
	}
	peerPort, err := freePort()
	if err != nil {
		return "", err
	}
	cfg := embed.NewConfig()
	cfg.Name = "signet"
	cfg.Dir = filepath.Join(cp.tmp, "etcd")
	clientURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(clientPort)}
	peerURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(peerPort)}
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{"stderr"}
	// Test data: durability across machine crashes is not wanted, speed is.
	cfg.UnsafeNoFsync = true
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return "", err
	}
	cp.etcd = e
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		return "", errors.New("etcd not ready after 60s")
	}
	return clientURL.String(), nil
}

func (cp *controlPlane) startAPIServer(ctx context.Context, listener net.Listener, etcdURL string, pki *pkiFiles) error {
	s := apiserveroptions.NewServerRunOptions()
	fs := flagSetOf(s)
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=" + listener.Addr().(*net.TCPAddr).IP.String(),
		"--cert-dir=" + filepath.Join(cp.tmp, "serving"),
		"--tls-cert-file=" + pki.servingCert,
		"--tls-private-key-file=" + pki.servingKey,
		"--client-ca-file=" + pki.caCert,
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki.saPublicKey,
		"--service-account-signing-key-file=" + pki.saPrivateKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--enable-priority-and-fairness=false",
		"--v=" + strconv.Itoa(cp.flags.verbosity),
	}
	if cp.node != nil {
		// The kubernetes Service's endpoints are the node IP, which Pods reach; the API server
		// reaches kubelets (logs, exec) with the admin certificate.
		args = append(args,
			"--advertise-address="+nodeIP,
			"--endpoint-reconciler-type=lease",
			"--kubelet-client-certificate="+pki.adminCert,
			"--kubelet-client-key="+pki.adminKey,
			// Pods, logs and exec by the node IP: there is no DNS in the node's namespace.
			"--kubelet-preferred-address-types=InternalIP",
		)
	} else {
		// Loopback cannot be a Service endpoint: no endpoint reconciler.
		args = append(args, "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none")
	}
	if cp.flags.auditLog != "" {
		// Metadata only (never a request or response body, so no token or Secret value), of the
		// requests ServiceAccounts make: what the tests run as a ServiceAccount actually used.
		policy := filepath.Join(cp.tmp, "audit-policy.yaml")
		if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
			return err
		}
		args = append(args,
			"--audit-policy-file="+policy,
			"--audit-log-path="+cp.flags.auditLog,
			"--audit-log-format=json",
			"--audit-log-mode=blocking",
		)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	s.SecureServing.Listener = listener
	s.SecureServing.BindPort = listener.Addr().(*net.TCPAddr).Port

	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	featureGate := s.GenericServerRunOptions.ComponentGlobalsRegistry.FeatureGateFor(compatibility.DefaultKubeComponent)
	if err := logsapi.ValidateAndApply(s.Logs, featureGate); err != nil {
		return err
	}
	completed, err := s.Complete(ctx)
	if err != nil {
		return err
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return fmt.Errorf("invalid options: %v", errs)
	}
	cp.apiserverErr = make(chan error, 1)
	go func() {
		cp.apiserverErr <- apiserverapp.Run(ctx, completed)
	}()
	return nil
}

func (cp *controlPlane) waitAPIServerReady(ctx context.Context, client kubernetes.Interface) error {
	return cp.waitFor(ctx, "kube-apiserver /readyz", func() (bool, error) {
		select {
		case err := <-cp.apiserverErr:
			return false, fmt.Errorf("kube-apiserver stopped: %v", err)
		default:
		}
		status := 0
		client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&status)
		if status != 200 {
			return false, nil
		}
		// RBAC bootstrap policy is in place once the admin can read it.
		_, err := client.RbacV1().ClusterRoles().Get(ctx, "cluster-admin", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		_, err = client.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}

func (cp *controlPlane) waitFor(ctx context.Context, what string, check func() (bool, error)) error {
	for {
		ok, err := check()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s not ready after %v", what, cp.flags.readyTimeout)
			}
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (cp *controlPlane) startControllerManager(kubeconfig string, pki *pkiFiles) error {
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--controllers=" + controllers,
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--concurrent-gc-syncs=5",
		"--v=" + strconv.Itoa(cp.flags.verbosity),
	}
	if cp.node != nil {
		args[1] = "--controllers=" + controllers + "," + nodeControllers
		args = append(args, "--root-ca-file="+pki.caCert)
	}
	return cp.startSelf("kube-controller-manager", "controller-manager", args...)
}

// childProcess is a component the harness started; it is bound to the harness by its stdin
// pipe (the component exits on EOF) and PR_SET_PDEATHSIG.
type childProcess struct {
	name  string
	cmd   *exec.Cmd
	stdin io.Closer
	done  chan struct{}
	// stopSignal is sent first at shutdown (SIGTERM unless set).
	stopSignal syscall.Signal
}

// startSelf starts this binary's component subcommand as a child.
func (cp *controlPlane) startSelf(name, subcommand string, args ...string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	_, err = cp.startChild(name, exec.Command(self, append([]string{subcommand}, args...)...))
	return err
}

// startChild starts cmd (its output going to our stderr) and watches it.
func (cp *controlPlane) startChild(name string, cmd *exec.Cmd) (*childProcess, error) {
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	// Killed with us even if we die without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	child := &childProcess{name: name, cmd: cmd, stdin: stdin, done: make(chan struct{}), stopSignal: syscall.SIGTERM}
	if cp.childDied == nil {
		cp.childDied = make(chan string, 16)
	}
	cp.children = append(cp.children, child)
	go func() {
		_ = cmd.Wait()
		close(child.done)
		select {
		case cp.childDied <- name:
		default:
		}
	}()
	return child, nil
}

// stop asks the child to exit and kills it after grace.
func (c *childProcess) stop(grace time.Duration) {
	_ = c.stdin.Close()
	_ = c.cmd.Process.Signal(c.stopSignal)
	select {
	case <-c.done:
	case <-time.After(grace):
		klog.Warningf("signet-apiserver: %s did not stop within %v, killing it", c.name, grace)
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func (cp *controlPlane) shutdown() {
	for i := len(cp.children) - 1; i >= 0; i-- {
		cp.children[i].stop(10 * time.Second)
	}
	if cp.node != nil {
		cp.node.shutdown()
	}
	if cp.apiserverErr != nil {
		select {
		case <-cp.apiserverErr:
		case <-time.After(15 * time.Second):
			klog.Warning("signet-apiserver: kube-apiserver did not stop within 15s")
		}
	}
	if cp.etcd != nil {
		cp.etcd.Close()
	}
	if cp.node != nil {
		// The parent (outside the namespaces) removes the kubeconfig and the temp dir once
		// every process of the node is gone.
		return
	}
	if !cp.flags.keepKubeconfig {
		_ = os.Remove(cp.flags.kubeconfig)
		if cp.flags.auditLog != "" {
			_ = os.Remove(cp.flags.auditLog)
		}
	}
	if err := os.RemoveAll(cp.tmp); err != nil {
		fmt.Fprintln(os.Stderr, "signet-apiserver: removing temp dir:", err)
	}
}

// writeKubeconfig writes a kubeconfig for server that authenticates with the given client
// certificate.
func writeKubeconfig(path, server, caCert, clientCert, clientKey string) error {
	caPEM, err := os.ReadFile(caCert)
	if err != nil {
		return err
	}
	certPEM, err := os.ReadFile(clientCert)
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(clientKey)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["signet"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["signet-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["signet"] = &clientcmdapi.Context{Cluster: "signet", AuthInfo: "signet-admin", Namespace: "default"}
	cfg.CurrentContext = "signet"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// Write then rename, so a reader never sees half a file.
	tmpPath := path + ".tmp"
	if err := clientcmd.WriteToFile(*cfg, tmpPath); err != nil {
		return err
	}
	return os.Rename(tmpPath, path)
}
