# The second sweep of shaders/scores.wgsl for binary logit items and class
# logits, in f64 on the words, rows, parameters and nodes the device gets
# (MLMIX_GPU_DUMP=dump.json cargo test ... gpu_dump_for_emulation), with
# the same indexing; prints the analytic score of a few parameters against
# central differences of the emulated log-likelihood over the first
# clusters: python3 tools/emulate_scores.py dump.json [clusters].
# Measured: they agree (e.g. 3.1909e-06 against 3.1909e-06), while the
# device gives the wrong gradient on this model (docs/gpu.md).
import json, math, sys
d=json.load(open(sys.argv[1]))
W=d['words']; R=d['rows']; P0=d['params']; N=d['nodes']
H_TERMS,H_COMBOS,H_BETWEEN,H_DIMS,H_COLS,H_ROWS,H_CLUSTERED,H_NODES,H_TERMS_AT,H_COVS_AT,H_SLOT_AT,H_BETWEEN_AT,H_VIRTUAL_AT,H_STARTS_AT=range(14)
TW=12
def tw(t,w): return W[W[H_TERMS_AT]+t*TW+w]
nt=W[H_TERMS]; dims=W[H_DIMS]; ncol=W[H_COLS]; nrows=W[H_ROWS]; nq=W[H_NODES]
ncl=len(W)-W[H_STARTS_AT]-1
def sp(t): return max(t,0)+math.log1p(math.exp(-abs(t)))
def logcdf(t): return -sp(-t)
def logdens(t): return -sp(t)-sp(-t)
def cov(r,c,z):
    if c<ncol: return R[r*ncol+c]
    v=W[H_VIRTUAL_AT]+2*(c-ncol); zv=z[W[v]]; m=W[v+1]
    return zv if m==0xffffffff else zv*R[r*ncol+m]
def lin(t,p,r,z,P):
    n=tw(t,4); at=W[H_COVS_AT]+tw(t,5)
    return sum(P[p+i]*cov(r,W[at+i],z) for i in range(n))
def values(t,r,z,P,vals):
    k=tw(t,0); slot=tw(t,10); n=tw(t,11); st=tw(t,7)
    if k==0:
        y=R[r*ncol+tw(t,1)]; c=int(y); ncat=tw(t,2)
        assert ncat==2
        for s in range(n):
            p=tw(t,6)+s*st; eta=lin(t,p+ncat-1,r,z,P); u=P[p]-eta
            vals[slot+s]=logcdf(u if c==0 else -u)
    elif k==2:
        cl=tw(t,9)
        for f in range(0,n,cl):
            vs=[P[tw(t,6)+kk*st]+lin(t,tw(t,6)+kk*st+1,r,z,P) for kk in range(f,f+cl)]
            m=max(vs); l=m+math.log(sum(math.exp(v-m) for v in vs))
            for i,kk in enumerate(range(f,f+cl)): vals[slot+kk]=vs[i]-l
    else: raise
def combos(b):
    ca=W[H_BETWEEN_AT]; k0=W[ca+b]; k1=W[ca+b+1]; lst=ca+W[H_BETWEEN]+1
    return [W[lst+i] for i in range(k0,k1)]
def cval(k,vals): return sum(vals[W[W[H_SLOT_AT]+k*nt+t]] for t in range(nt))
def lse(v):
    m=max(v); return m+math.log(sum(math.exp(x-m) for x in v))
def node(ps): 
    q=ps%nq; return N[q*(dims+1):q*(dims+1)+dims], N[q*(dims+1)+dims]
npass=nq*W[H_BETWEEN]
def cluster(j,P,score=None):
    r0=W[W[H_STARTS_AT]+j]; r1=W[W[H_STARTS_AT]+j+1]
    pl=[]
    for ps in range(npass):
        z,lw=node(ps); b=ps//nq; tot=0
        for r in range(r0,r1):
            vals=[0.0]*128
            for t in range(nt): values(t,r,z,P,vals)
            tot+=R[nrows*ncol+r]*lse([cval(k,vals) for k in combos(b)])
        pl.append(lw+tot)
    ll=lse(pl)
    if score is not None:
        for ps in range(npass):
            post=math.exp(pl[ps]-ll)
            if post<1e-10: continue
            z,lw=node(ps); b=ps//nq
            for r in range(r0,r1):
                vals=[0.0]*128
                for t in range(nt): values(t,r,z,P,vals)
                ks=combos(b); cv=[cval(k,vals) for k in ks]; rl=lse(cv)
                w=[0.0]*128
                for k,v in zip(ks,cv):
                    pk=post*R[nrows*ncol+r]*math.exp(v-rl)
                    for t in range(nt): w[W[W[H_SLOT_AT]+k*nt+t]]+=pk
                for t in range(nt):
                    kind=tw(t,0); slot=tw(t,10); n=tw(t,11); st=tw(t,7)
                    if kind==0:
                        y=R[r*ncol+tw(t,1)]; c=int(y)
                        for s in range(n):
                            ws=w[slot+s]
                            if ws==0: continue
                            p=tw(t,6)+s*st; eta=lin(t,p+1,r,z,P); u=P[p]-eta
                            if c==0: lp=logcdf(u); dup=math.exp(logdens(u)-lp); dlo=0; up=p; lo=p
                            else: lp=logcdf(-u); dlo=math.exp(logdens(u)-lp); dup=0; up=p; lo=p
                            score[up]+=ws*dup; score[lo]-=ws*dlo
                            at=W[H_COVS_AT]+tw(t,5)
                            for i in range(tw(t,4)): score[p+1+i]+=ws*(dlo-dup)*cov(r,W[at+i],z)
    return ll
import sys
J=int(sys.argv[2]) if len(sys.argv)>2 else 2
S=[0.0]*len(P0)
L=sum(cluster(j,P0,S) for j in range(J))
for i in [0,1,2,3,30,31]:
    h=1e-4; Pp=list(P0); Pp[i]+=h; Pm=list(P0); Pm[i]-=h
    fd=(sum(cluster(j,Pp) for j in range(J))-sum(cluster(j,Pm) for j in range(J)))/(2*h)
    print(i, S[i], fd)
