// Engine errors in an operator's words: each error class maps to a status, its stable code and a sentence; unknown
// errors say "unexpected" and nothing of their message or stack.
import t from 'tap';
import {
  BucketExistsError, BucketNotEmptyError, BucketRecordError, BucketNotFoundError, DecryptionError, ErasureError, HsmError, KeyNotFoundError, KeyStateError,
  ObjectNotFoundError, StoreError,
} from '../dist/index.js';
import { ConsoleRequestError, toOperatorError } from '../dist/console/operator-errors.js';

t.test('each engine error class has its words', async (t) => {
  const cases: [unknown, number, string, RegExp][] = [
    [new KeyStateError('root key is disabled'), 409, 'ERR_KEY_STATE', /^The root key is disabled: nothing under it can be read or written until it is enabled again\.$/],
    [new KeyStateError('root key has been destroyed'), 409, 'ERR_KEY_STATE', /^The root key has been destroyed: everything it protected is permanently unreadable\.$/],
    [new KeyStateError('alias is already in use'), 409, 'ERR_KEY_STATE', /^That alias is already in use: choose another\.$/],
    [new KeyStateError('import token has expired or is used up'), 409, 'ERR_KEY_STATE', /^The import token has expired or is used up: create a new one\.$/],
    [new KeyNotFoundError(), 404, 'ERR_KEY_NOT_FOUND', /^There is no such root key/],
    [new DecryptionError(), 422, 'ERR_DECRYPTION', /^The object cannot be read: its data does not authenticate/],
    [new ErasureError('2 good shards of 3 needed'), 503, 'ERR_ERASURE', /^Too many storage nodes are down or damaged to read this object \(2 good shards of 3 needed\)/],
    [new StoreError(2, 'read', 'EIO'), 502, 'ERR_STORE', /^Storage node 2 failed \(read\): EIO\.$/],
    [new ObjectNotFoundError(), 404, 'ERR_OBJECT_NOT_FOUND', /^There is no such object in this bucket\.$/],
    [new BucketNotFoundError('x'), 404, 'ERR_BUCKET_NOT_FOUND', /^There is no such bucket\.$/],
    [new BucketExistsError('x'), 409, 'ERR_BUCKET_EXISTS', /^A bucket with that name already exists\.$/],
    [new BucketNotEmptyError('x'), 409, 'ERR_BUCKET_NOT_EMPTY', /^The bucket still holds objects: delete them first\.$/],
    [new BucketRecordError('manifest MAC mismatch'), 422, 'ERR_BUCKET_RECORD', /^The bucket's stored records fail their integrity check \(changed or damaged\): manifest MAC mismatch\.$/],
    [new HsmError('C_WrapKey', 'CKR_DEVICE_ERROR'), 502, 'ERR_HSM', /^The HSM refused the operation \(C_WrapKey failed: CKR_DEVICE_ERROR\)\.$/],
    [new RangeError('name must be 3 to 63 characters'), 400, 'ERR_INVALID_ARGUMENT', /^Invalid input: name must be 3 to 63 characters\.$/],
    [new ConsoleRequestError(409, 'ERR_X', 'Said so.'), 409, 'ERR_X', /^Said so\.$/],
    [Object.assign(new Error('Unexpected end of JSON input'), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON' }), 400, 'FST_ERR_CTP_INVALID_JSON', /^The request was not understood\.$/],
  ];
  for (const [err, status, code, message] of cases) {
    const told = toOperatorError(err);
    t.equal(told.status, status, `${code} status`);
    t.equal(told.code, code);
    t.match(told.message, message);
  }
});

t.test('anything else is "unexpected", without its message or stack', async (t) => {
  const secretish = new Error('/home/op/secret at Object.<anonymous> (x.js:1:1)');
  t.same(toOperatorError(secretish), { status: 500, code: 'ERR_INTERNAL', message: "The console hit an unexpected error; its log has the details." });
  t.same(toOperatorError('a string'), { status: 500, code: 'ERR_INTERNAL', message: "The console hit an unexpected error; its log has the details." });
});
