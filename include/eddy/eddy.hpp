#pragma once
//! Everything eddy offers, in one include.

#include <eddy/config.hpp>

#include <eddy/clock.hpp>
#include <eddy/concepts.hpp>
#include <eddy/coop.hpp>
#include <eddy/interval.hpp>
#include <eddy/join.hpp>
#include <eddy/join_handle.hpp>
#include <eddy/join_set.hpp>
#include <eddy/result.hpp>
#include <eddy/runtime.hpp>
#include <eddy/runtime_metrics.hpp>
#include <eddy/select.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/spawn_blocking.hpp>
#include <eddy/sync/barrier.hpp>
#include <eddy/sync/broadcast.hpp>
#include <eddy/sync/cancellation_token.hpp>
#include <eddy/sync/mpsc.hpp>
#include <eddy/sync/mutex.hpp>
#include <eddy/sync/notify.hpp>
#include <eddy/sync/oneshot.hpp>
#include <eddy/sync/rw_lock.hpp>
#include <eddy/sync/semaphore.hpp>
#include <eddy/sync/watch.hpp>
#include <eddy/task.hpp>
#include <eddy/task_local.hpp>
#include <eddy/time.hpp>
#include <eddy/timeout.hpp>
#include <eddy/waker.hpp>
#include <eddy/yield_now.hpp>
