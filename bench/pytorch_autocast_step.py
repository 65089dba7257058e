# PyTorch's training step under autocast to bfloat16 on the CPU: the peer of lmkit's bf16
# products (bench_train's *_bf16 rows), the same models and settings as the fp32 peers in
# ../shared/peers/pytorch/ (train_gpt_shakespeare.py, train_gpt2_step.py), whose GPT it imports.
#
#   PEER_THREADS=1 python3 bench/pytorch_autocast_step.py shakespeare|gpt2 [PEERS_DIR]
#
# Prints "<ms> ms/step" (mean after warm-up) and the peak resident memory. Random tokens: only
# the time matters here (the fp32 script measures the loss).
import os
import resource
import sys
import time

peers = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                            '../../shared/peers/pytorch')
sys.path.insert(0, peers)
import torch  # noqa: E402
from gpt import GPT  # noqa: E402

torch.set_num_threads(int(os.environ.get('PEER_THREADS', '2')))
torch.manual_seed(0)
which = sys.argv[1] if len(sys.argv) > 1 else 'shakespeare'
if which == 'shakespeare':  # nanoGPT's CPU config, AdamW, clipping at 1.0
    vocab, B, T, steps, warm = 65, 12, 64, 200, 20
    m = GPT(vocab, T, 4, 4, 128, bias=False)
    opt, clip = m.optimizer(1e-3, 0.1, (0.9, 0.99)), 1.0
else:  # GPT-2 small's shape at 4 x 256, AdamW
    vocab, B, T, steps, warm = 50257, 4, 256, 7, 2
    m = GPT(vocab, 1024, 12, 12, 768, bias=True)
    opt, clip = m.optimizer(6e-4, 0.1, (0.9, 0.95)), 0.0
times = []
for step in range(steps):
    x = torch.randint(vocab, (B, T))
    y = torch.randint(vocab, (B, T))
    t0 = time.time()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        _, loss = m(x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(m.parameters(), clip)
    opt.step()
    times.append(time.time() - t0)
mean = sum(times[warm:]) / len(times[warm:])
print(f"{which} autocast bf16, torch {torch.__version__}, threads {torch.get_num_threads()}: {1000 * mean:.2f} ms/step; "
      f"loss {loss.item():.4f}; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
