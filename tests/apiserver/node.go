package main

// Node mode (`--node`): besides etcd, the API server and the controller manager, the harness runs
// a real node — containerd + runc, a CNI bridge network, kube-scheduler, the kubelet and
// kube-proxy — all inside a network and mount namespace of its own, so that no address it uses is
// routed anywhere outside this machine's namespaces:
//
//   - the parent (this file's runNodeParent, in the host's namespaces) makes a cgroup for the node
//     (after sweeping those of node harnesses that were SIGKILLed) and the host listener for the
//     API server, starts the child with CLONE_NEWNET|CLONE_NEWNS, and at exit kills every process
//     left in the node's cgroup (containers and shims included) and removes the cgroups and the
//     temp dir;
//   - the child (runNodeChild) brings up lo with the node IP, bind-mounts directories of the temp
//     dir over /run, /var/lib and /var/log (the kubelet and containerd hard-code paths there), runs the control plane with the
//     API server on NODE-IP:6443, starts the node, and forwards the inherited host listener (a
//     socket of the host's namespace) to the API server and NODE-IP:PORT to the host's
//     127.0.0.1:PORT for each --expose-host-port (dialled from a thread that entered the host's
//     network namespace).

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

const (
	// nodeChildCommand is the hidden subcommand the parent re-executes itself with.
	nodeChildCommand = "node-netns"
	// nodeName is the Node's name; nodeIP its address inside the node's network namespace
	// (on lo: no other interface is needed, and the pod bridge routes to it).
	nodeName = "signet-node"
	nodeIP   = "10.200.0.1"
	// podCIDR is the CNI bridge's range; its gateway is the bridge's own address.
	podCIDR    = "10.244.0.0/24"
	podGateway = "10.244.0.1"
	// apiServerNodePort is the API server's port inside the node's namespace.
	apiServerNodePort = 6443
	// pauseImage is the reference of the sandbox image (built here: tests/apiserver/node).
	pauseImage = "signet.test/pause:1"
	// kubeProxyHealthz is kube-proxy's health endpoint inside the namespace.
	kubeProxyHealthz = "127.0.0.1:10256"
	// maxForwardedConns bounds the connections each forwarder carries at once.
	maxForwardedConns = 256
	// nodeTempPrefix starts the name of a node harness's temp dir: <prefix><pid>-<random>.
	nodeTempPrefix = "signet-apiserver-node-"
	// plainTempPrefix starts the name of a plain harness's temp dir: <prefix><pid>-<random>.
	plainTempPrefix = "signet-apiserver-"
	// cniBinDir is where Debian's containernetworking-plugins puts the plugins.
	cniBinDir = "/usr/lib/cni"
)

// nodeControllers are the controllers a Deployment and a Service need, run on top of
// `controllers` in node mode.
const nodeControllers = "deployment-controller,replicaset-controller,endpoints-controller," +
	"endpointslice-controller,endpointslice-mirroring-controller,root-ca-certificate-publisher-controller," +
	"pod-garbage-collector-controller,node-lifecycle-controller"

// nodeMountPoints hold paths the kubelet, containerd and the CNI plugins use whatever they are
// configured with (/var/lib/kubelet, /var/log/containers, /var/lib/cni, /run/containerd,
// /run/netns). Inside the child's mount namespace each is a bind mount of an empty directory of the
// temp dir, so nothing is written to the host's copy, and no directory of the host has to be made
// (or removed while another node test bed still has it mounted). The node's components need none
// of what these hide.
var nodeMountPoints = []string{"/run", "/var/lib", "/var/log"}

// nodeBinaries are the programs node mode runs (Debian: containerd, runc,
// containernetworking-plugins, iptables, iproute2).
var nodeBinaries = []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "ip", "iptables", "iptables-restore"}

// cniPlugins are the CNI plugins the node's network list uses.
var cniPlugins = []string{"bridge", "host-local", "loopback", "portmap"}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// portList is a repeatable TCP port flag.
type portList []int

func (l *portList) String() string {
	parts := make([]string, len(*l))
	for i, p := range *l {
		parts[i] = strconv.Itoa(p)
	}
	return strings.Join(parts, ",")
}

func (l *portList) Set(v string) error {
	p, err := strconv.Atoi(v)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("not a TCP port: %q", v)
	}
	if p == apiServerNodePort || (p >= 10248 && p <= 10259) {
		return fmt.Errorf("port %d is used by the node itself", p)
	}
	*l = append(*l, p)
	return nil
}

// nodePrerequisites lists what node mode needs and cannot find.
func nodePrerequisites(pauseArchive string) []string {
	var missing []string
	for _, b := range nodeBinaries {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	for _, p := range cniPlugins {
		if _, err := os.Stat(filepath.Join(cniBinDir, p)); err != nil {
			missing = append(missing, filepath.Join(cniBinDir, p))
		}
	}
	if _, err := os.Stat(pauseArchive); err != nil {
		missing = append(missing, pauseArchive+" (the pause image archive)")
	}
	return missing
}

// defaultPauseArchive is the pause image archive next to this binary (scripts/bootstrap puts it
// there).
func defaultPauseArchive() string {
	self, err := os.Executable()
	if err != nil {
		return "signet-pause.tar"
	}
	return filepath.Join(filepath.Dir(self), "signet-pause.tar")
}

// ---------------------------------------------------------------------------------------------
// The parent, in the host's namespaces.

func runNodeParent(hf harnessFlags, tmp string) int {
	code := 1
	defer func() {
		if !hf.keepKubeconfig {
			_ = os.Remove(hf.kubeconfig)
			if hf.auditLog != "" {
				_ = os.Remove(hf.auditLog)
			}
		}
		if err := os.RemoveAll(tmp); err != nil {
			fmt.Fprintln(os.Stderr, "signet-apiserver: removing temp dir:", err)
		}
	}()
	if hf.noControllers {
		fmt.Fprintln(os.Stderr, "signet-apiserver: --node needs the controller manager")
		return 2
	}
	pause := os.Getenv("SIGNET_PAUSE_IMAGE")
	if pause == "" {
		pause = defaultPauseArchive()
	}
	if missing := nodePrerequisites(pause); len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "signet-apiserver: --node needs %s (scripts/bootstrap apiserver installs them)\n",
			strings.Join(missing, ", "))
		return 1
	}
	for _, image := range hf.images {
		if _, err := os.Stat(image); err != nil {
			fmt.Fprintln(os.Stderr, "signet-apiserver: --image:", err)
			return 2
		}
	}
	// The child reads and writes these where nodeMountPoints hide the host's directories.
	for _, p := range append([]string{hf.kubeconfig, hf.auditLog, tmp, pause}, hf.images...) {
		if p != "" && hiddenInNode(p) {
			fmt.Fprintf(os.Stderr, "signet-apiserver: --node cannot use %s: the node's namespace hides %s\n",
				p, strings.Join(nodeMountPoints, ", "))
			return 2
		}
	}

	cg, err := newNodeCgroup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "signet-apiserver: node cgroup:", err)
		return 1
	}
	defer cg.remove()
	for _, p := range nodeMountPoints {
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			fmt.Fprintf(os.Stderr, "signet-apiserver: --node needs the directory %s\n", p)
			return 1
		}
	}

	hostListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "signet-apiserver: listen:", err)
		return 1
	}
	listenerFile, err := hostListener.(*net.TCPListener).File()
	if err != nil {
		fmt.Fprintln(os.Stderr, "signet-apiserver: listener:", err)
		return 1
	}
	hostPort := hostListener.Addr().(*net.TCPAddr).Port
	_ = hostListener.Close() // the duplicate in listenerFile stays open for the child
	hostNetns, err := os.Open("/proc/self/ns/net")
	if err != nil {
		fmt.Fprintln(os.Stderr, "signet-apiserver: host network namespace:", err)
		return 1
	}
	goRead, goWrite, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "signet-apiserver: pipe:", err)
		return 1
	}

	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "signet-apiserver:", err)
		return 1
	}
	args := []string{nodeChildCommand,
		"--kubeconfig=" + hf.kubeconfig,
		"--v=" + strconv.Itoa(hf.verbosity),
		"--ready-timeout=" + hf.readyTimeout.String(),
		"--audit-log=" + hf.auditLog,
		"--tmp=" + tmp,
		"--host-port=" + strconv.Itoa(hostPort),
		"--cgroup-root=" + cg.path,
		"--pause-image=" + pause,
	}
	for _, image := range hf.images {
		abs, err := filepath.Abs(image)
		if err != nil {
			abs = image
		}
		args = append(args, "--image="+abs)
	}
	for _, p := range hf.exposedPorts {
		args = append(args, "--expose-host-port="+strconv.Itoa(p))
	}
	child := exec.Command(self, args...)
	child.Stdout = os.Stdout
	child.Stderr = os.Stderr
	child.ExtraFiles = []*os.File{listenerFile, hostNetns, goRead} // fds 3, 4, 5
	child.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
	}
	childStdin, err := child.StdinPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "signet-apiserver:", err)
		return 1
	}
	if err := child.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "signet-apiserver: starting the node's namespaces:", err)
		return 1
	}
	_ = listenerFile.Close()
	_ = hostNetns.Close()
	_ = goRead.Close()
	childDone := make(chan struct{})
	var childErr error
	go func() {
		childErr = child.Wait()
		close(childDone)
	}()
	// Everything the child starts (containerd, its shims, the containers) lives in the node's
	// cgroup from here on, so that teardown finds it all.
	if err := cg.enter(child.Process.Pid); err != nil {
		fmt.Fprintln(os.Stderr, "signet-apiserver: node cgroup:", err)
		_ = child.Process.Kill()
		<-childDone
		cg.killAll()
		return 1
	}
	_, _ = goWrite.Write([]byte{1})
	_ = goWrite.Close()

	stop := make(chan struct{})
	var stopOnce sync.Once
	requestStop := func() { stopOnce.Do(func() { close(stop) }) }
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-signals
		klog.Infof("signet-apiserver: %v received, shutting down the node", s)
		requestStop()
	}()
	if hf.exitOnStdinEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			klog.Info("signet-apiserver: stdin closed, shutting down the node")
			requestStop()
		}()
	}

	select {
	case <-childDone:
		fmt.Fprintln(os.Stderr, "signet-apiserver: the node's control plane exited:", childErr)
	case <-stop:
		_ = childStdin.Close()
		_ = child.Process.Signal(syscall.SIGTERM)
		select {
		case <-childDone:
			if childErr == nil {
				code = 0
			}
		// Short: the testkit kills a harness that has not exited 20 s after its stdin closed, and
		// a killed harness leaves its node's containers to the next harness's sweep. Nothing the
		// node keeps outlives it anyway (temp dirs, namespaces), so killAll below is the teardown.
		case <-time.After(nodeStopGrace):
			fmt.Fprintf(os.Stderr, "signet-apiserver: the node did not stop within %v, killing it\n", nodeStopGrace)
			_ = child.Process.Kill()
			<-childDone
		}
	}
	cg.killAll()
	return code
}

// hiddenInNode tells whether path lies under one of nodeMountPoints.
func hiddenInNode(path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return true
	}
	if resolved, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(resolved, filepath.Base(abs))
	}
	for _, m := range nodeMountPoints {
		if abs == m || strings.HasPrefix(abs, m+"/") {
			return true
		}
	}
	return false
}

// nodeStopGrace is how long the node's control plane may take to stop before it is killed.
const nodeStopGrace = 8 * time.Second

// nodeCgroup is the node's cgroup (v1 hierarchies): <our memory cgroup>/signet-node-<pid>, so
// that the node stays inside whatever memory cgroup the harness was started in. The harness's
// own processes go to its "harness" child; the kubelet puts the Pods under "kubepods".
type nodeCgroup struct {
	path        string
	hierarchies []string
}

// fillCpusets gives every cpuset from below root down to dir that has no CPUs its parent's CPUs
// and memory nodes: a new v1 cpuset starts empty, and no process can join an empty one. A parent
// another harness has just created may still be empty, so each level is checked, not only the
// ones made here.
func fillCpusets(root, dir string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		return err
	}
	level := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		parent := level
		level = filepath.Join(level, part)
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			own, err := os.ReadFile(filepath.Join(level, f))
			if err != nil {
				return err
			}
			if len(strings.TrimSpace(string(own))) > 0 {
				continue
			}
			v, err := os.ReadFile(filepath.Join(parent, f))
			if err == nil {
				err = os.WriteFile(filepath.Join(level, f), v, 0o644)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func newNodeCgroup() (*nodeCgroup, error) {
	base := "/"
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && parts[1] == "memory" {
			base = parts[2]
		}
	}
	cg := &nodeCgroup{path: filepath.Join(base, fmt.Sprintf("signet-node-%d", os.Getpid()))}
	hierarchies, err := cgroupV1Hierarchies()
	if err != nil {
		return nil, err
	}
	cg.hierarchies = hierarchies
	sweepStaleNodeCgroups(base, hierarchies)
	sweepStaleTempDirs(nodeTempPrefix)
	for _, h := range cg.hierarchies {
		// The parents (the memory cgroup's path, mirrored into the other hierarchies) are shared
		// by the node harnesses of this machine: created when missing and never removed, since
		// another harness may be making its own cgroup in them at that moment.
		dir := filepath.Join(h, cg.path, "harness")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			cg.remove()
			return nil, err
		}
		if filepath.Base(h) == "cpuset" {
			if err := fillCpusets(h, dir); err != nil {
				cg.remove()
				return nil, err
			}
		}
	}
	return cg, nil
}

// cgroupV1Hierarchies lists the mounted cgroup v1 hierarchies.
func cgroupV1Hierarchies() ([]string, error) {
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return nil, err
	}
	var hierarchies []string
	for _, e := range entries {
		dir := filepath.Join("/sys/fs/cgroup", e.Name())
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil || st.Type != unix.CGROUP_SUPER_MAGIC {
			continue // the unified (v2) hierarchy, symlinks, anything else
		}
		if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
			continue
		}
		hierarchies = append(hierarchies, dir)
	}
	if len(hierarchies) == 0 {
		return nil, errors.New("no cgroup v1 hierarchy under /sys/fs/cgroup (node mode needs cgroup v1 here)")
	}
	return hierarchies, nil
}

// sweepStaleNodeCgroups kills and removes the node cgroups under base whose harness is gone: a
// harness that was SIGKILLed could not clean up, and its containers and shims outlived it.
func sweepStaleNodeCgroups(base string, hierarchies []string) {
	entries, err := os.ReadDir(filepath.Join(hierarchies[0], base))
	if err != nil {
		return
	}
	for _, e := range entries {
		pidText, ok := strings.CutPrefix(e.Name(), "signet-node-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || !e.IsDir() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // its harness is alive (or its pid was reused: left alone, to be safe)
		}
		klog.Infof("signet-apiserver: removing the node cgroup of dead harness %d", pid)
		stale := &nodeCgroup{path: filepath.Join(base, e.Name()), hierarchies: hierarchies}
		stale.killAll()
	}
}

// sweepStaleTempDirs removes the temp dirs named <prefix><pid>-<random> whose harness is gone. A
// harness killed with its session (or a machine that stopped) leaves its temp dir behind: etcd's
// data for a plain harness, ~160 MB of containerd images for a node one (swept only after
// sweepStaleNodeCgroups has killed what ran from it).
func sweepStaleTempDirs(prefix string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	for _, dir := range dirs {
		pidText, _, ok := strings.Cut(strings.TrimPrefix(filepath.Base(dir), prefix), "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 {
			continue // another kind's dir (signet-apiserver-node-…) or an older name
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // its harness is alive (or its pid was reused: left alone, to be safe)
		}
		klog.Infof("signet-apiserver: removing %s of dead harness %d", dir, pid)
		_ = os.RemoveAll(dir)
	}
}

// enter moves pid into the harness cgroup of every hierarchy.
func (cg *nodeCgroup) enter(pid int) error {
	for _, h := range cg.hierarchies {
		procs := filepath.Join(h, cg.path, "harness", "cgroup.procs")
		if err := os.WriteFile(procs, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// pids lists every process in the node's cgroup tree (the pids hierarchy, else the first one).
func (cg *nodeCgroup) pids() []int {
	h := cg.hierarchies[0]
	for _, candidate := range cg.hierarchies {
		if filepath.Base(candidate) == "pids" {
			h = candidate
		}
	}
	var pids []int
	_ = filepath.WalkDir(filepath.Join(h, cg.path), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// killAll kills every process left in the node's cgroup (frozen first, so nothing forks away)
// and removes the cgroups.
func (cg *nodeCgroup) killAll() {
	freezer := ""
	for _, h := range cg.hierarchies {
		if filepath.Base(h) == "freezer" {
			freezer = filepath.Join(h, cg.path, "freezer.state")
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		pids := cg.pids()
		if len(pids) == 0 {
			break
		}
		if freezer != "" {
			_ = os.WriteFile(freezer, []byte("FROZEN"), 0o644)
			for i := 0; i < 50; i++ {
				state, _ := os.ReadFile(freezer)
				if strings.TrimSpace(string(state)) == "FROZEN" {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			pids = cg.pids()
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if freezer != "" {
			_ = os.WriteFile(freezer, []byte("THAWED"), 0o644)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if left := cg.pids(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "signet-apiserver: processes %v outlived the node\n", left)
	}
	cg.remove()
}

// remove deletes the node's cgroup tree (the kubelet's cgroups too), deepest first; the shared
// parents stay (see newNodeCgroup).
func (cg *nodeCgroup) remove() {
	// On a hybrid host the kubelet also mirrors its cgroups into the unified hierarchy.
	hierarchies := append([]string{"/sys/fs/cgroup/unified"}, cg.hierarchies...)
	for _, h := range hierarchies {
		if _, err := os.Stat(filepath.Join(h, cg.path)); err != nil {
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(filepath.Join(h, cg.path), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			if err := rmdirRetrying(d); err != nil {
				fmt.Fprintln(os.Stderr, "signet-apiserver: removing cgroup:", err)
			}
		}
	}
}

// rmdirRetrying removes an empty cgroup directory; a cgroup whose last process just died can be
// busy for a moment.
func rmdirRetrying(dir string) error {
	var err error
	for i := 0; i < 20; i++ {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("%s: %w", dir, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s: %w", dir, err)
}

// ---------------------------------------------------------------------------------------------
// The child, inside the node's network and mount namespaces.

// nodeRuntime is the node's state inside the child.
type nodeRuntime struct {
	tmp          string
	hostPort     int
	cgroupRoot   string
	pauseArchive string
	images       []string
	exposedPorts []int
	verbosity    int

	hostListener net.Listener
	hostNetns    int

	containerdSocket string
	mu               sync.Mutex
	listeners        []net.Listener
}

func runNodeChild(args []string) int {
	var hf harnessFlags
	rt := &nodeRuntime{}
	fs := flag.NewFlagSet(nodeChildCommand, flag.ContinueOnError)
	hf.register(fs)
	fs.StringVar(&rt.tmp, "tmp", "", "the parent's temp dir")
	fs.IntVar(&rt.hostPort, "host-port", 0, "the host port forwarded to the API server")
	fs.StringVar(&rt.cgroupRoot, "cgroup-root", "", "the node's cgroup")
	fs.StringVar(&rt.pauseArchive, "pause-image", "", "the pause image archive")
	if err := fs.Parse(args); err != nil || rt.tmp == "" || rt.hostPort == 0 || rt.cgroupRoot == "" {
		fmt.Fprintln(os.Stderr, "signet-apiserver: node-netns is started by signet-apiserver --node")
		return 2
	}
	hf.node = true
	rt.images = hf.images
	rt.exposedPorts = hf.exposedPorts
	rt.verbosity = hf.verbosity

	// fd 5: the parent writes one byte once we are in the node's cgroup.
	goPipe := os.NewFile(5, "go")
	if _, err := goPipe.Read(make([]byte, 1)); err != nil {
		fmt.Fprintln(os.Stderr, "signet-apiserver: the parent went away")
		return 1
	}
	_ = goPipe.Close()
	listenerFile := os.NewFile(3, "host-listener")
	listener, err := net.FileListener(listenerFile) // a close-on-exec duplicate
	_ = listenerFile.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "signet-apiserver: host listener:", err)
		return 1
	}
	rt.hostListener = listener
	// The host's network namespace stays with this process: containerd, the kubelet and the
	// containers do not inherit it.
	rt.hostNetns = 4
	syscall.CloseOnExec(rt.hostNetns)

	if err := rt.setUpNamespaces(); err != nil {
		fmt.Fprintln(os.Stderr, "signet-apiserver: node namespaces:", err)
		return 1
	}

	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		cancel()
	}()
	go func() {
		// The parent closes our stdin to stop us.
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()

	cp := &controlPlane{tmp: rt.tmp, flags: hf, node: rt}
	code := 0
	if err := cp.run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "signet-apiserver:", err)
		code = 1
	}
	cancel()
	cp.shutdown()
	return code
}

// setUpNamespaces makes the child's mounts private, bind-mounts the temp dir's directories over
// nodeMountPoints, and gives lo the node IP. It runs before any other process of the node starts.
func (rt *nodeRuntime) setUpNamespaces() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	for _, target := range nodeMountPoints {
		src := filepath.Join(rt.tmp, "mnt", strings.ReplaceAll(strings.TrimPrefix(target, "/"), "/", "-"))
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mounting %s: %w", target, err)
		}
	}
	for _, cmd := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "addr", "add", nodeIP + "/32", "dev", "lo"},
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(cmd, " "), err, out)
		}
	}
	// Per-namespace sysctls: Pods' traffic to Services crosses the bridge through iptables.
	for file, value := range map[string]string{
		"/proc/sys/net/ipv4/ip_forward":                 "1",
		"/proc/sys/net/bridge/bridge-nf-call-iptables":  "1",
		"/proc/sys/net/bridge/bridge-nf-call-ip6tables": "1",
	} {
		if err := os.WriteFile(file, []byte(value), 0o644); err != nil {
			klog.Warningf("signet-apiserver: %s: %v", file, err)
		}
	}
	return nil
}

// startForwarding forwards the host listener to the API server's port and each exposed host
// port from the node IP to the host's loopback.
func (rt *nodeRuntime) startForwarding(apiServerPort int) error {
	go rt.forward(rt.hostListener, func() (net.Conn, error) {
		return net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", apiServerPort), 10*time.Second)
	})
	if len(rt.exposedPorts) == 0 {
		return nil
	}
	host, err := newNetnsDialer(rt.hostNetns)
	if err != nil {
		return err
	}
	for _, port := range rt.exposedPorts {
		l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", nodeIP, port))
		if err != nil {
			return fmt.Errorf("--expose-host-port %d: %w", port, err)
		}
		rt.mu.Lock()
		rt.listeners = append(rt.listeners, l)
		rt.mu.Unlock()
		target := fmt.Sprintf("127.0.0.1:%d", port)
		go rt.forward(l, func() (net.Conn, error) { return host.dial(target) })
	}
	return nil
}

// forward accepts on l and pipes every connection to what dial returns, at most
// maxForwardedConns at once.
func (rt *nodeRuntime) forward(l net.Listener, dial func() (net.Conn, error)) {
	slots := make(chan struct{}, maxForwardedConns)
	for {
		conn, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		slots <- struct{}{}
		go func() {
			defer func() { <-slots }()
			defer conn.Close()
			upstream, err := dial()
			if err != nil {
				klog.V(2).Infof("signet-apiserver: forwarding %v: %v", l.Addr(), err)
				return
			}
			defer upstream.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(upstream, conn); closeWrite(upstream); done <- struct{}{} }()
			go func() { _, _ = io.Copy(conn, upstream); closeWrite(conn); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

func closeWrite(c net.Conn) {
	if tcp, ok := c.(*net.TCPConn); ok {
		_ = tcp.CloseWrite()
	}
}

// netnsDialer connects to addresses of another network namespace: its sockets are created on
// one OS thread that entered that namespace (a socket stays in the namespace it was created in).
// That thread never exits: when a locked thread ends, Go discards it, and children whose
// PR_SET_PDEATHSIG was armed from it (containerd, the kubelet…) would be killed with it.
type netnsDialer struct {
	requests chan dialRequest
}

type dialRequest struct {
	addr  string
	reply chan dialResult
}

type dialResult struct {
	conn net.Conn
	err  error
}

func newNetnsDialer(nsFd int) (*netnsDialer, error) {
	d := &netnsDialer{requests: make(chan dialRequest)}
	entered := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // for good: see netnsDialer
		if err := unix.Setns(nsFd, unix.CLONE_NEWNET); err != nil {
			entered <- fmt.Errorf("entering the host's network namespace: %w", err)
			select {} // keep the thread (see netnsDialer)
		}
		entered <- nil
		for req := range d.requests {
			conn, err := net.DialTimeout("tcp", req.addr, 10*time.Second)
			req.reply <- dialResult{conn, err}
		}
		select {}
	}()
	if err := <-entered; err != nil {
		return nil, err
	}
	return d, nil
}

// dial connects to addr in the dialer's namespace.
func (d *netnsDialer) dial(addr string) (net.Conn, error) {
	reply := make(chan dialResult, 1)
	d.requests <- dialRequest{addr: addr, reply: reply}
	r := <-reply
	return r.conn, r.err
}

// start runs containerd, imports the images, and starts the scheduler, the kubelet and
// kube-proxy; it returns once the node is Ready and Services are programmed.
func (rt *nodeRuntime) start(ctx context.Context, cp *controlPlane, kubeconfig string, pki *pkiFiles, client kubernetes.Interface) error {
	t0 := time.Now()
	if err := rt.startContainerd(ctx, cp); err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	for _, archive := range append([]string{rt.pauseArchive}, rt.images...) {
		if err := rt.ctr(ctx, "images", "import", archive); err != nil {
			return fmt.Errorf("importing %s: %w", archive, err)
		}
	}
	klog.Infof("signet-apiserver: containerd up and %d image archive(s) imported in %v", 1+len(rt.images), time.Since(t0))

	v := "--v=" + strconv.Itoa(rt.verbosity)
	if err := cp.startSelf("kube-scheduler", "scheduler",
		"--kubeconfig="+kubeconfig,
		"--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		v,
	); err != nil {
		return err
	}

	kubeletKubeconfig := filepath.Join(rt.tmp, "kubelet.kubeconfig")
	if err := writeKubeconfig(kubeletKubeconfig, fmt.Sprintf("https://%s:%d", nodeIP, apiServerNodePort),
		pki.caCert, pki.kubeletCert, pki.kubeletKey); err != nil {
		return err
	}
	kubeletConfig := filepath.Join(rt.tmp, "kubelet.yaml")
	if err := os.WriteFile(kubeletConfig, []byte(rt.kubeletConfiguration(pki)), 0o600); err != nil {
		return err
	}
	if err := cp.startSelf("kubelet", "kubelet",
		"--config="+kubeletConfig,
		"--kubeconfig="+kubeletKubeconfig,
		"--cert-dir="+filepath.Join(rt.tmp, "kubelet-pki"),
		"--node-ip="+nodeIP,
		"--hostname-override="+nodeName,
		v,
	); err != nil {
		return err
	}

	proxyConfig := filepath.Join(rt.tmp, "kube-proxy.yaml")
	if err := os.WriteFile(proxyConfig, []byte(kubeProxyConfiguration(kubeconfig)), 0o600); err != nil {
		return err
	}
	if err := cp.startSelf("kube-proxy", "proxy", "--config="+proxyConfig, v); err != nil {
		return err
	}

	if err := cp.waitFor(ctx, "node "+nodeName+" Ready", func() (bool, error) {
		node, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, nil
		}
		// The node lifecycle controller lifts the not-ready taint the kubelet registers with.
		for _, t := range node.Spec.Taints {
			if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
				return false, nil
			}
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	}); err != nil {
		return err
	}
	// Pods mount kube-root-ca.crt with their ServiceAccount token.
	if err := cp.waitFor(ctx, "kube-root-ca.crt in default", func() (bool, error) {
		_, err := client.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		return err
	}
	healthz := &http.Client{Timeout: 2 * time.Second}
	if err := cp.waitFor(ctx, "kube-proxy /healthz", func() (bool, error) {
		resp, err := healthz.Get("http://" + kubeProxyHealthz + "/healthz")
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}); err != nil {
		return err
	}
	klog.Infof("signet-apiserver: node %s ready %v after the control plane", nodeName, time.Since(t0))
	return nil
}

// startContainerd writes containerd's configuration (every path under the temp dir) and starts it.
// A sandbox may lack CAP_SYS_RESOURCE (this one does), and then runc cannot give the pause
// container its oom_score_adj of -998: restrict_oom_score_adj keeps every score at or above
// containerd's own.
func (rt *nodeRuntime) startContainerd(ctx context.Context, cp *controlPlane) error {
	dir := filepath.Join(rt.tmp, "containerd")
	for _, d := range []string{"root", "state", "opt", "cni-conf", "cni-ipam"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	rt.containerdSocket = filepath.Join(dir, "containerd.sock")
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[7]q
    conf_dir = %[8]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), rt.containerdSocket, rt.containerdSocket+".ttrpc",
		filepath.Join(dir, "opt"), pauseImage, cniBinDir, filepath.Join(dir, "cni-conf"))
	configPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return err
	}
	network := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "signet",
  "plugins": [
    {"type": "bridge", "bridge": "signet0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q, "gateway": %q}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
`, podCIDR, podGateway, filepath.Join(dir, "cni-ipam"))
	if err := os.WriteFile(filepath.Join(dir, "cni-conf", "10-signet.conflist"), []byte(network), 0o600); err != nil {
		return err
	}
	args := []string{"--config", configPath}
	if rt.verbosity < 2 {
		args = append(args, "--log-level", "warn")
	}
	if _, err := cp.startChild("containerd", exec.Command("containerd", args...)); err != nil {
		return err
	}
	return cp.waitFor(ctx, "containerd", func() (bool, error) {
		return exec.CommandContext(ctx, "ctr", "--address", rt.containerdSocket, "version").Run() == nil, nil
	})
}

// ctr runs `ctr -n k8s.io ARGS…` against the node's containerd.
func (rt *nodeRuntime) ctr(ctx context.Context, args ...string) error {
	full := append([]string{"--address", rt.containerdSocket, "--namespace", "k8s.io"}, args...)
	out, err := exec.CommandContext(ctx, "ctr", full...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// kubeletConfiguration is the kubelet's KubeletConfiguration: cgroup v1 allowed, cgroupfs driver
// under the node's cgroup, no DNS (the test bed has none), image garbage collection off (every
// image is imported, none can be pulled), served on the node IP for logs and exec.
func (rt *nodeRuntime) kubeletConfiguration(pki *pkiFiles) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: %q
containerRuntimeEndpoint: %q
podLogsDir: %q
volumePluginDir: %q
failSwapOn: false
oomScoreAdj: 0
address: %q
port: 10250
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization: {mode: Webhook}
resolvConf: ""
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi"}
`, rt.cgroupRoot, "unix://"+rt.containerdSocket, filepath.Join(rt.tmp, "pod-logs"),
		filepath.Join(rt.tmp, "volume-plugins"), nodeIP, pki.caCert)
}

// kubeProxyConfiguration is kube-proxy's configuration: iptables mode, and no conntrack sysctls
// (a network namespace other than the first may not set them).
func kubeProxyConfiguration(kubeconfig string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: %q}
mode: iptables
clusterCIDR: %q
hostnameOverride: %q
healthzBindAddress: %q
metricsBindAddress: 127.0.0.1:10249
oomScoreAdj: 0
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
`, kubeconfig, podCIDR, nodeName, kubeProxyHealthz)
}

// shutdown closes the exposed-port listeners (the children are stopped by the control plane).
func (rt *nodeRuntime) shutdown() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, l := range rt.listeners {
		_ = l.Close()
	}
	if rt.hostListener != nil {
		_ = rt.hostListener.Close()
	}
}
