#ifndef DPO_DIST_CMPI_SHIM_H
#define DPO_DIST_CMPI_SHIM_H
#include <mpi.h>

// Open MPI defines its predefined handles as macros over global structs; Swift imports
// neither, so each one the project uses has a getter here.
static inline MPI_Comm dpo_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype dpo_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype dpo_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype dpo_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype dpo_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Op dpo_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op dpo_mpi_max(void) { return MPI_MAX; }
static inline void *dpo_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Request dpo_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Datatype dpo_mpi_datatype_null(void) { return MPI_DATATYPE_NULL; }
static inline int dpo_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline MPI_Info dpo_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline MPI_Status *dpo_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Status *dpo_mpi_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
#endif
