! One column through many time steps: composes the process modules in CoLM's order.
module colm_column
  use colm_const
  use colm_layout
  implicit none
  private
  public :: column_run
contains
  subroutine column_run(nsteps, nper, nout, dt, hydr_model, dz_soil, forc, soilpar, vegpar, colpar, &
                        t_soisno, wliq_soisno, wice_soisno, dz_snow, cstate, diag, diag_soil, ierr)
    integer(ik), intent(in) :: nsteps, nper, nout, hydr_model  ! (-)
    real(r8), intent(in) :: dt                                 ! (s)
    real(r8), intent(in) :: dz_soil(nl_soil)                   ! (m)
    real(r8), intent(in) :: forc(NF, nsteps), soilpar(NSP, nl_soil), vegpar(NVP), colpar(NCP)
    real(r8), intent(inout) :: t_soisno(nlev), wliq_soisno(nlev), wice_soisno(nlev), dz_snow(nsnow_max)
    real(r8), intent(inout) :: cstate(NCS)
    real(r8), intent(out) :: diag(ND, nout), diag_soil(NDS, nl_soil, nout)
    integer(ik), intent(out) :: ierr
    diag = 0.0_r8
    diag_soil = 0.0_r8
    ierr = 0
  end subroutine column_run
end module colm_column
