"""Simulated kubelet, GPU device plugin and GPU operator for the local testbed.

The package registers fake Nodes with a real kube-apiserver, acts as the kubelet for the pods the real scheduler binds
to them, serves their logs over HTTPS, and plays the NVIDIA GPU operator when a ClusterPolicy exists. Pure logic lives
in ``config``, ``model``, ``pods``, ``gpu_operator`` and ``logs``; ``kube`` holds the small API machinery and ``agent``
wires everything together.
"""
