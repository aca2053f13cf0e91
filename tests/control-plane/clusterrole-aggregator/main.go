// Command clusterrole-aggregator runs Kubernetes' ClusterRole aggregation controller, the one
// kube-controller-manager runs, against the API server of a kubeconfig. The test control
// plane has no controller manager; with this, the built-in view, edit and admin roles gain
// the rules of ClusterRoles labelled for them, as in a real cluster.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/controller/clusterroleaggregation"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of an identity that may update ClusterRoles")
	flag.Parse()
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		klog.Fatalf("cannot read the kubeconfig: %v", err)
	}
	client := kubernetes.NewForConfigOrDie(config)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	informerFactory := informers.NewSharedInformerFactory(client, 10*time.Minute)
	controller := clusterroleaggregation.NewClusterRoleAggregation(
		informerFactory.Rbac().V1().ClusterRoles(), client.RbacV1())
	informerFactory.Start(ctx.Done())
	controller.Run(ctx, 1)
}
