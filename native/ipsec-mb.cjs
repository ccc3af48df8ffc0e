// Prints the static intel-ipsec-mb library to link into hsm_gcm (gcm-imb.cc), or nothing when it is not installed
// (Debian: libipsec-mb-dev; softhsm/prepare.sh installs it as root) or HSM_IPSEC_MB=0: the addon then seals with
// OpenSSL only. Read by binding.gyp.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const header = ['/usr/include', '/usr/local/include'].some((d) => existsSync(join(d, 'intel-ipsec-mb.h')));
const dirs = ['/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/local/lib', '/usr/lib'];
const lib = dirs.map((d) => join(d, 'libIPSec_MB.a')).find((f) => existsSync(f));
process.stdout.write(process.env.HSM_IPSEC_MB !== '0' && process.arch === 'x64' && header && lib ? lib : '');
